"""Cross-talk (issue 11) with an echo path that moves in the middle of a caller line: a loaded
sound server shifted the loudspeaker's echo by 118 ms mid-line in a live drill, and left it 29 ms
early (before the caller's playback in the aligned trainee track) until the drill saw it.

Real espeak-ng speech: the caller track leaks into the trainee's track 12 dB down, 5 ms late until
the middle of the caller's second line, then at another delay."""

from __future__ import annotations

import numpy as np
import pytest

from roleplay.audio.crosstalk import remove_leak
from roleplay.bench.leaks import NOISE_DBFS
from tests.test_crosstalk import planted  # noqa: F401  (the module fixture: the same real speech)

RATE_HZ = 16_000
FRAME = 320


def _energy(x: np.ndarray) -> np.ndarray:
    n = len(x) // FRAME
    return np.mean(x[: n * FRAME].astype(np.float64).reshape(n, FRAME) ** 2, axis=1)


def _delayed(x: np.ndarray, delay_ms: float) -> np.ndarray:
    d = int(round(delay_ms * RATE_HZ / 1000))
    out = np.zeros_like(x)
    if d >= 0:
        out[d:] = x[: len(x) - d]
    else:
        out[:d] = x[-d:]
    return out


@pytest.mark.parametrize("then_ms", [120.0, -30.0])
def test_leak_whose_delay_jumps_mid_line_is_removed(planted, then_ms) -> None:  # noqa: F811
    placed, tr = planted
    caller, trainee = tr["caller"], tr["trainee"]
    line = placed[2]  # the caller's second line, which the trainee cuts into
    jump = int((line.start_s + 1.45) * RATE_HZ)  # inside a one-second block, not at its edge
    before, after = _delayed(caller, 5.0), _delayed(caller, then_ms)
    leak = np.concatenate([before[:jump], after[jump:]]) * 10 ** (-12 / 20)
    noise = np.random.default_rng(0).normal(0.0, 10 ** (NOISE_DBFS / 20), len(trainee))
    mic = (trainee + leak + noise).astype(np.float32)
    out = remove_leak(caller, mic, rate_hz=RATE_HZ)
    assert out.report.found
    # where only the leak sounds nothing is left above -50 dBFS (the leak is at about -37 dBFS; the
    # echo 30 ms early was left whole before: 145 frames from the jump to the end of the line)
    alone = (np.maximum(_energy(before), _energy(after)) > 1e-6) & (_energy(trainee) < 1e-10)
    left_dbfs = 10 * np.log10(_energy(out.samples)[alone] + 1e-20)
    assert alone.sum() > 200
    assert np.flatnonzero(alone)[left_dbfs > -50.0].tolist() == []
    # the trainee's speech stays whole, also the cut-in over the moved leak
    speaking = _energy(trainee) > 1e-4
    kept_db = 10 * np.log10(_energy(out.samples)[speaking].sum() / _energy(trainee)[speaking].sum())
    assert kept_db == pytest.approx(0.0, abs=0.5)
