"""Interruptions (issue 11): a cut-in split by a pause into two turns, while the interrupted
party talks on through the pause, is one interruption. In the accuracy set's phone-band
`en-woman-150` call the caller's cut-in at 32.86 s became two caller turns and the second counted
as a second interruption (with and without a leak).

Real espeak-ng speech and the real recognizer."""

from __future__ import annotations

import pytest

from roleplay.analysis.pipeline import analyse_audio
from roleplay.audio.clip import Audio
from roleplay.recording.scripted import ScriptLine, place_lines, speak_line, tracks

RATE_HZ = 16_000
PAUSE_S = 0.8  # inside the caller's cut-in: longer than the VAD's 0.3 s, shorter than a turn gap
TRAINEE = ("Ik begrijp dat u boos bent, meneer, en ik wil u graag helpen, maar dan moet ik eerst "
           "weten wat er precies aan de hand is met uw vader en sinds wanneer hij koorts heeft.")
TRAINEE_EN = ("I understand that you are angry, sir, and I would like to help you, but first I need to know "
              "what exactly is going on with your father and since when he has had a fever.")


def _script(tts_cache) -> list[ScriptLine]:
    first = ScriptLine("caller", "Nee, nu luistert u naar mij.", "nl-man-middle", overlap_at_s=2.0,
                       kind="interruption")
    resumed_at = speak_line(first, cache_dir=tts_cache).duration_s + PAUSE_S
    return [
        ScriptLine("caller", "Ik wacht al een uur op de dokter.", "nl-man-middle"),
        ScriptLine("trainee", TRAINEE, "nl-trainee-woman", gap_s=0.8),
        first,
        # the same cut-in goes on after its pause, the trainee still talking
        ScriptLine("caller", "Ik wil nu gewoon een dokter hebben.", "nl-man-middle", overlap_at_s=resumed_at),
    ]


def test_cut_in_resumed_after_a_pause_is_one_interruption(tts_cache, transcriber) -> None:
    placed = place_lines(_script(tts_cache), cache_dir=tts_cache)
    trainee, first, resumed = placed[1], placed[2], placed[3]
    assert resumed.end_s < trainee.end_s  # the trainee talks through the whole cut-in
    tr = tracks(placed)
    analysis = analyse_audio(caller=Audio(tr["caller"], RATE_HZ), trainee=Audio(tr["trainee"], RATE_HZ),
                             language="nl", transcriber=transcriber)
    caller_turns = [t for t in analysis.turns_of("caller") if t.start_s > trainee.start_s]
    # the pause splits the cut-in into two caller turns (what made the second interruption)
    assert len(caller_turns) == 2, analysis.turns
    (one,) = analysis.interruptions
    assert one.by == "caller" and one.start_s == pytest.approx(first.start_s, abs=0.1), analysis.interruptions
    # its overlap runs on over the resumed part
    assert one.overlap_s >= (first.end_s - first.start_s) + (resumed.end_s - resumed.start_s) - 0.3, one


def test_a_cut_in_too_short_to_count_and_then_resumed_counts_from_its_first_word(tts_cache, transcriber) -> None:
    """'What?' (under the 0.5 s an interruption needs) - a pause - 'That is far too long!',
    the trainee talking on: one interruption from the first word, not one at the resumed part (the
    accuracy set's phone-band `en-woman-150` leak call found it 0.9 s late)."""
    first = ScriptLine("caller", "What?", "en-man", overlap_at_s=2.0, kind="interruption")
    short_s = speak_line(first, cache_dir=tts_cache).duration_s
    assert short_s < 0.5  # too short to count on its own
    script = [
        ScriptLine("caller", "I have been waiting for an hour for the doctor.", "en-man"),
        ScriptLine("trainee", TRAINEE_EN, "en-trainee-woman", gap_s=0.8),
        first,
        ScriptLine("caller", "That is far too long!", "en-man", overlap_at_s=short_s + PAUSE_S),
    ]
    placed = place_lines(script, cache_dir=tts_cache)
    trainee, cut_in, resumed = placed[1], placed[2], placed[3]
    assert resumed.end_s < trainee.end_s
    tr = tracks(placed)
    analysis = analyse_audio(caller=Audio(tr["caller"], RATE_HZ), trainee=Audio(tr["trainee"], RATE_HZ),
                             language="en", transcriber=transcriber)
    (one,) = analysis.interruptions
    assert one.by == "caller" and one.start_s == pytest.approx(cut_in.start_s, abs=0.1), analysis.interruptions
    assert one.overlap_s >= (cut_in.end_s - cut_in.start_s) + (resumed.end_s - resumed.start_s) - 0.3, one
