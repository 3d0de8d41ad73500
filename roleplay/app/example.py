"""An example call that the project makes itself: an angry caller about a home visit, and a
trainee who mostly does the right things (and interrupts once)."""

from __future__ import annotations

from pathlib import Path

from roleplay.recording.scripted import ScriptLine, place_lines, speak_line, write_call

CALIBRATION_TEXT = {
    "nl": "De huisartsenpost is 's avonds en in het weekend bereikbaar voor spoed die niet kan wachten.",
    "en": "The out-of-hours practice can be reached in the evening and at the weekend for urgent care.",
}


def _script(language: str) -> list[ScriptLine]:
    # Wordings chosen so that Whisper base still recognizes them in espeak-ng's voice.
    if language == "en":
        c, t = "en-man", "en-trainee-woman"
        return [
            ScriptLine("trainee", "Good evening, out-of-hours GP service, you are speaking with Anna.", t),
            ScriptLine("caller", "Finally! I have been waiting for an hour. My wife has a high fever and nobody "
                       "comes. This is the third time I call!", c, anger=7, gap_s=0.5),
            ScriptLine("trainee", "I understand that you are worried.", t, gap_s=1.2, rate_wpm=150),
            ScriptLine("caller", "Worried? I am furious! You people promised a doctor would come and nothing "
                       "happens.", c, anger=8, gap_s=0.4),
            ScriptLine("trainee", "Yes but we are very busy tonight.", t, overlap_at_s=2.0, kind="interruption"),
            ScriptLine("caller", "Let me finish! Nobody listens to me.", c, anger=8, gap_s=0.3),
            ScriptLine("trainee", "What I can do is this. The doctor will call you back within twenty minutes.", t,
                       gap_s=1.3, rate_wpm=135, gain_db=-3),
            ScriptLine("caller", "Twenty minutes. All right then.", c, anger=4, gap_s=0.5),
        ]
    c, t = "nl-man-middle", "nl-trainee-woman"
    return [
        ScriptLine("trainee", "Goedenavond, huisartsenpost Utrecht, u spreekt met Sanne.", t),
        ScriptLine("caller", "Eindelijk! Ik wacht al een uur. Mijn vrouw heeft hoge koorts en er komt niemand. "
                   "Dit is de derde keer dat ik bel!", c, anger=7, gap_s=0.5),
        ScriptLine("trainee", "Ik kan me voorstellen dat u boos bent.", t, gap_s=1.2, rate_wpm=150),
        ScriptLine("caller", "Ik ben woedend! Jullie beloofden dat de dokter zou komen en er gebeurt niks.", c,
                   anger=8, gap_s=0.4),
        ScriptLine("trainee", "Ja maar het is erg druk vanavond.", t, overlap_at_s=2.0, kind="interruption"),
        ScriptLine("caller", "Laat me uitpraten! Niemand luistert naar mij.", c, anger=8, gap_s=0.3),
        ScriptLine("trainee", "Wat ik wel kan doen: de dokter belt u binnen twintig minuten terug.", t,
                   gap_s=1.3, rate_wpm=130, gain_db=-3),
        ScriptLine("caller", "Twintig minuten. Goed dan.", c, anger=4, gap_s=0.5),
    ]


def write_example_call(directory: Path, *, language: str = "nl", cache_dir: Path | None = None) -> Path:
    voice = "en-trainee-woman" if language == "en" else "nl-trainee-woman"
    placed = place_lines(_script(language), cache_dir=cache_dir)
    calibration = speak_line(ScriptLine("trainee", CALIBRATION_TEXT[language], voice), cache_dir=cache_dir)
    return write_call(directory, placed, language=language, calibration=calibration,
                      meta={"scenario": "example-home-visit", "trainee": "example",
                            "calibration_text": CALIBRATION_TEXT[language]})
