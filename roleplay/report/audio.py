"""The call's sound in the report: both tracks mixed to one small Ogg/Opus stream (about 3 kB per
second), embedded in the page as a data URI or, for a long call, written beside it."""

from __future__ import annotations

import base64
import io
from pathlib import Path

from roleplay.core.files import write_atomic

# Longer calls get the audio beside the page instead of inside it, to keep the page loadable.
EMBED_MAX_S = 15 * 60
# Sample rates Opus encodes as they are; others are resampled to 16 kHz first.
_OPUS_RATES_HZ = (8000, 12000, 16000, 24000, 48000)


def encode_call_audio(call_dir: Path) -> bytes | None:
    """Both tracks mixed to one mono Ogg/Opus stream; None when the call has no audio."""
    import numpy as np
    import soundfile as sf

    from roleplay.recording.calldir import load_call

    rec = load_call(call_dir)
    tracks = [a for a in (rec.caller, rec.trainee) if a is not None]
    if not tracks:
        return None
    rate = tracks[0].rate_hz
    n = max(len(a.samples) for a in tracks)
    mix = np.zeros(n, dtype=np.float32)
    for a in tracks:
        mix[: len(a.samples)] += a.samples
    peak = float(np.max(np.abs(mix))) if n else 0.0
    if peak > 0.99:
        mix *= 0.99 / peak
    if rate not in _OPUS_RATES_HZ:
        from roleplay.audio.clip import Audio

        mix, rate = Audio(mix, rate).resampled(16000).samples, 16000
    buf = io.BytesIO()
    try:
        sf.write(buf, mix, rate, format="OGG", subtype="OPUS")
    except (sf.LibsndfileError, TypeError, ValueError):  # a libsndfile without Opus still has Vorbis
        buf = io.BytesIO()
        sf.write(buf, mix, rate, format="OGG", subtype="VORBIS")
    return buf.getvalue()


def audio_data_uri(call_dir: Path) -> str | None:
    """The call's mixed audio as a data URI for the page; None when there is none or it cannot be
    encoded (a report without sound is better than none)."""
    try:
        blob = encode_call_audio(call_dir)
    except Exception:  # noqa: BLE001 - a report without sound is better than none
        return None
    return "data:audio/ogg;base64," + base64.b64encode(blob).decode("ascii") if blob else None


def write_audio_beside(call_dir: Path, html_path: Path) -> str | None:
    """The mixed audio written as `<page>.audio.ogg` next to the page; its relative URL, or None
    when the call has no audio."""
    blob = encode_call_audio(call_dir)
    if not blob:
        return None
    side = html_path.with_name(html_path.stem + ".audio.ogg")
    write_atomic(side, blob)
    return side.name
