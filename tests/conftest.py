"""Shared fixtures: the real Whisper model (loaded once per session) and synthesized calls."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from roleplay.core.paths import cache_dir
from roleplay.speech.models import prepare_environment

prepare_environment()
# Tests never touch the user's own history: one throw-away database per test session.
os.environ["ROLEPLAY_DB"] = os.path.join(tempfile.mkdtemp(prefix="roleplay-test-db-"), "history.sqlite3")
# ... nor the scenarios saved in the app on this machine (they would join every scenario list).
os.environ["ROLEPLAY_SAVED_SCENARIOS_DIR"] = tempfile.mkdtemp(prefix="roleplay-test-saved-scenarios-")

REPO = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("ROLEPLAY_SHARED_DIR", REPO.parent / "shared"))
SPEECH = SHARED / "speech"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that uses the Whisper model (the `transcriber` fixture) is `model`, one that uses the
    virtual audio devices (`vd`) is `devices`, even if unmarked; both are `slow`, so
    `-m "not slow"` runs neither."""
    for item in items:
        fixtures = getattr(item, "fixturenames", ())
        if "transcriber" in fixtures and not item.get_closest_marker("model"):
            item.add_marker(pytest.mark.model)
        if "vd" in fixtures and not item.get_closest_marker("devices"):
            item.add_marker(pytest.mark.devices)
        if item.get_closest_marker("model") or item.get_closest_marker("devices"):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def transcriber():
    from roleplay.speech.asr import FasterWhisperTranscriber
    from roleplay.speech.models import choose_model

    return FasterWhisperTranscriber(choose_model(None).path)


@pytest.fixture(scope="session")
def tts_cache() -> Path:
    """Synthesized lines are cached by a hash of text, voice, prosody and version: safe to reuse."""
    path = cache_dir() / "test-tts"
    path.mkdir(parents=True, exist_ok=True)
    return path


def speech_file(relative: str) -> Path:
    path = SPEECH / relative
    if not path.exists():
        pytest.skip(f"shared test speech {path} is not present")
    return path


@pytest.fixture(scope="module")
def vd():
    """A private PulseAudio server with virtual speaker and microphone (null sinks), per test module."""
    from roleplay.audio.virtual import virtual_devices
    from roleplay.core.errors import RoleplayError

    try:
        with virtual_devices() as started:
            yield started
    except RoleplayError as exc:
        if "not installed" in str(exc):
            pytest.skip(str(exc))
        raise
