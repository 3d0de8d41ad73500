"""A drill over the virtual devices in a severe scenario (issue 12): the scripted trainee lets the
caller vent, asks two questions, both answered with the scenario's facts, then goes through the
whole boundary sequence (names the behaviour, announces the end, ends the call and hangs up), and
the call ends `ended-by-trainee`."""

from __future__ import annotations

import json
import threading
import time

import pytest
from helpers import xdg_data_home

from roleplay.bench.live import ScriptedTrainee, espeak, prepare_trainee
from roleplay.caller.scenario import load_scenario
from roleplay.session.live import DrillSettings, delay_summary, run_drill

pytestmark = pytest.mark.model
SCENARIO = "en-keeps-swearing"  # severe: the first boundary is shrugged off
GREETING = "Good evening, out of hours GP service, this is Anna."
REPLIES = (
    ("I see.", "after", 0.6),  # let him vent first
    # worded as Whisper base hears espeak-ng's English ("What is your date of birth?" came out as
    # "What is your name on birth?")
    ("When were you born?", "after", 0.6),
    ("What is your address?", "after", 0.6),
    # names the behaviour; "Please stop swearing at me." was heard in a drill as "clean top, wearing
    # a tummy.", and the live (greedy) recognizer found the boundary in it in 19 of 24 placements of
    # the espeak line (0.2-1.7 s of silence before it, 0/-6/-12 dB, with and without noise), this
    # line in 24 of 24
    ("I want you to stop swearing.", "after", 0.6),
    # announces the end; "I am going to end this call if you keep swearing." was heard in a drill
    # as "... end this trouble ...", no announcement; "if you carry on like this" comes through
    ("If you carry on like this, I will end the call.", "after", 0.6),
    ("I am ending this call now. Goodbye.", "after", 0.6),  # ends it, then the hang-up key
)
HANG_UP_AFTER_S = 0.2  # after the last line's audio: before the caller can answer it


@pytest.fixture(scope="module")
def xdg(tmp_path_factory):
    with xdg_data_home(tmp_path_factory.mktemp("xdg")) as data:
        prepare_trainee("asker")
        yield data


class FloorTrainee(ScriptedTrainee):
    """Answers only a caller line that began after its own last line ended, as a person answers
    what was said to them last. The script pairs reply i with caller line i; a caller line that
    began while a reply was pending or playing (a barge-in, or a "Hello?" when a loaded machine
    made the caller's reply late) would queue two replies back to back, heard as one turn (the
    boundary and the end announcement in one turn in a CI rehearsal; "I see. When were you born?"
    on a loaded machine). Such a line is heard, not answered: the next one is."""

    def _run(self) -> None:
        from roleplay.recording.calldir import read_events
        from roleplay.recording.events import CallerLine

        said_until_s = 0.0
        if self.greeting:
            said_until_s = self.greeting_at_s + espeak(self.greeting, voice=self.voice).duration_s
            self._inject(self.greeting, self.greeting_at_s, "greeting")
        seen = 0
        while not self._stop.is_set() and self.replies:
            caller = [e for e in read_events(self.call_dir) if isinstance(e, CallerLine)]
            for ev in caller[seen:]:
                seen += 1
                if ev.t_s < said_until_s or not self.replies:
                    continue
                text, _mode, offset_s = self.replies.pop(0)
                at_s = ev.end_s + offset_s
                self._inject(text, at_s, "after")
                said_until_s = at_s + espeak(text, voice=self.voice).duration_s
            time.sleep(0.03)


def _hang_up_after_last_line(trainee: ScriptedTrainee, hang_up: threading.Event,
                             stop: threading.Event) -> None:
    """Press the hang-up key once the last scripted line has been said."""
    last = REPLIES[-1][0]
    while not stop.is_set():
        said = [p for p in trainee.played if p.text == last]
        if said and trainee.ready_wall is not None:
            at = trainee.ready_wall + said[0].planned_s + espeak(last, voice="en").duration_s
            time.sleep(max(0.0, at + HANG_UP_AFTER_S - time.monotonic()))
            hang_up.set()
            return
        time.sleep(0.05)


def _drill(vd, transcriber, out):
    trainee = FloorTrainee(vd, out, greeting=GREETING, replies=REPLIES, voice="en")
    hang_up, stop = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_hang_up_after_last_line, args=(trainee, hang_up, stop),
                               daemon=True)
    watcher.start()
    try:
        return run_drill(scenario_id=SCENARIO, trainee="asker", out_dir=out, transcriber=transcriber,
                         on_ready=trainee.on_ready, hang_up=hang_up, settings=DrillSettings(seed=1))
    finally:
        trainee.stop()
        stop.set()


@pytest.fixture(scope="module")
def call(vd, xdg, transcriber, tmp_path_factory):
    for attempt in (1, 2):
        out = tmp_path_factory.mktemp("questions") / "call"
        result = _drill(vd, transcriber, out)
        # as in test_live: the virtual sound server, starved on a loaded machine, can stop
        # delivering audio (the call is then cut off); one more attempt
        if not result.cut_off or attempt == 2:
            break
        print(f"attempt 1 was cut off by the audio device ({result.message}); once more")
    events = [json.loads(x) for x in (out / "events.jsonl").read_text().splitlines() if x]
    for e in events:
        if e["type"] in ("trainee-turn", "caller-line", "answer", "anger", "premature-start",
                         "reply-delay", "trainee-hung-up", "call-end"):
            print({k: e.get(k) for k in ("t_s", "type", "heard", "text", "behaviours", "question",
                                         "fact", "anger", "reason", "outcome", "total_s",
                                         "end_reason", "after_caller_s") if k in e})
    print("delays", delay_summary(result.reply_delays))
    return result, events


def test_both_questions_are_answered_with_the_scenario_facts(call) -> None:
    _, events = call
    facts = load_scenario(SCENARIO).facts
    answers = {e["question"]: e for e in events if e["type"] == "answer"}
    lines = [e for e in events if e["type"] == "caller-line"]
    for question in ("date_of_birth", "address"):
        assert question in answers, sorted(answers)
        a = answers[question]
        assert a["fact"] == question and a["value"] == facts[question]
        # the caller's next line says it
        said = next(ln["text"] for ln in lines if ln["t_s"] >= a["t_s"])
        assert facts[question] in said, (said, a)


def test_the_full_boundary_sequence_ends_the_call_by_the_trainee(call) -> None:
    result, events = call
    assert result.outcome == "ended-by-trainee" and not result.cut_off
    turns = [e for e in events if e["type"] == "trainee-turn"]
    named = [e["t_s"] for e in turns if "boundary" in e.get("behaviours", [])]
    announced = [e["t_s"] for e in turns if "end-announcement" in e.get("behaviours", [])]
    (hung_up,) = [e["t_s"] for e in events if e["type"] == "trainee-hung-up"]
    assert named and announced, turns
    assert min(named) < min(announced) < hung_up
    # severe: naming the behaviour did not settle it, so the rest of the sequence was needed
    assert any(e["type"] == "anger" and e["reason"] == "boundary-ignored" for e in events)
    assert events[-1]["type"] == "call-end" and events[-1]["outcome"] == "ended-by-trainee"


def test_turn_ends_are_logged_with_their_reasons(call) -> None:
    """Each reply says how long the pause before it had to be and why. Which reasons occur depends
    on the machine: under heavy load the words come after the fixed wait ("no words yet")."""
    from roleplay.session.turntaking import TurnSettings

    _, events = call
    s = TurnSettings()
    delays = [e for e in events if e["type"] == "reply-delay" and e.get("end_reason")]
    print("end reasons:", [(d["end_reason"], d["end_wait_s"], d["silence_wait_s"]) for d in delays])
    assert len(delays) >= 5
    for d in delays:
        assert d["end_wait_s"] in (s.complete_s, s.sentence_s, s.end_of_turn_s, s.continuing_s,
                                   s.trailing_s), d
        assert d["silence_wait_s"] >= d["end_wait_s"] - 0.05, d
