"""Cross-talk: one party's voice leaking into the other party's track, found and removed from the
audio alone.

A laptop without a headset, a speaker-phone, two lapel microphones in one room: the caller's voice
reaches the trainee's track tens of milliseconds late and 10 to 25 dB down, and the voice activity
detector takes it for the trainee. This module works on the two tracks of a call (a drill's call
directory, a stereo file, two files) and needs nothing else: in a drill the trainee track is
already aligned to the caller's playback (the echo then sits at ~0 ms, moved by `echo-offset`
shifts), in an imported recording it sits wherever the room put it.

Per block of a second the leak is modelled as a short FIR filter of the source track around
the delay where the two tracks correlate most (least squares: the other voice is uncorrelated with
the source, so it does not bias the fit; only its variance). Then, per 20 ms frame:

- the filtered source (the predicted leak) is subtracted: an echo canceller with a known reference
  (`method="cancel"`), whose residue is what the target party said;
- a frame whose energy the predicted leak explains (it takes away `explained_db` or more, or the
  frame is at most `level_margin_db` louder than the predicted leak) is the leak alone and is set
  to silence, unless the target party was clearly heard just before (`hold_s`,
  so the soft ends of their words stay); real double talk adds energy the copy cannot explain and
  stays.

`method="gate"` is the live drill's echo gate applied afterwards (no subtraction: a frame passes
only when it is `margin_db` louder than the predicted leak), kept as the comparison in
`roleplay bench accuracy`. A block is treated as leaking only when the fit takes away at least
`min_block_erle_db` in the upper quarter of its frames (so clean calls pass through unchanged).
Each frame then takes, of the block's own fit and the nearest leaking blocks' fits before and after
it, the one that explains it best: a block too quiet or too busy with double talk to fit alone
borrows a neighbour's, and an echo path that jumps mid-block (a loaded sound server moving its
output) is followed at the frame where it jumps. The recording on disk is never changed: the
analysis cleans its copy in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from roleplay.audio.clip import Audio
from roleplay.core.errors import InputError

METHODS = ("cancel", "gate")


@dataclass(frozen=True)
class CrosstalkSettings:
    method: str = "cancel"
    # a drill's trainee track is aligned to the playback, but until the drill sees the echo move
    # (an `echo-offset` shift) it sits where the path put it: 29 ms early seen under load
    min_delay_s: float = -0.06
    # rooms and phone paths: tens of milliseconds; but a drill whose lag measurement failed (no
    # chirp heard) leaves the echo at the device's whole latency: 1.46 s seen over virtual devices
    max_delay_s: float = 2.0
    search_s: float = 0.15  # each block searches this far either side of the whole call's delay
    block_s: float = 1.0  # the leak path drifts (module-loopback's resampler, output underflows)
    taps_before: int = 8  # FIR taps either side of the correlation peak: fractional delay, band limits
    taps_after: int = 40
    frame_s: float = 0.02
    explained_db: float = 6.0  # the copy takes this much of a frame's energy away: the leak alone
    level_margin_db: float = 4.0  # or the frame is at most this much louder than the predicted leak
    hold_s: float = 0.2
    min_block_erle_db: float = 8.0
    max_gain_db: float = -3.0
    min_leak_rms: float = 10 ** (-70 / 20)  # a predicted leak under -70 dBFS is nothing
    margin_db: float = 9.0  # method "gate": as roleplay.audio.echo.EchoSettings


DEFAULT_CROSSTALK = CrosstalkSettings()


@dataclass(frozen=True)
class LeakReport:
    """What was found of `source` in `target` and taken out."""

    found: bool
    delay_ms: float | None  # median over the leaking blocks
    gain_db: float | None  # leak level against the source
    erle_db: float | None  # echo return loss enhancement in the leak-only frames (cancel)
    leak_s: float  # time set to silence as the leak alone
    blocks: int  # blocks with a leak / all blocks
    blocks_total: int


@dataclass(frozen=True)
class Cleaned:
    samples: np.ndarray
    report: LeakReport


def _frame_energy(x: np.ndarray, frame: int) -> np.ndarray:
    n = len(x) // frame
    energy: np.ndarray = np.mean(x[: n * frame].astype(np.float64).reshape(n, frame) ** 2, axis=1)
    return energy


def _segment(x: np.ndarray, start: int, end: int) -> np.ndarray:
    """x[start:end] with zeros outside the array."""
    out = np.zeros(end - start, dtype=np.float64)
    a, b = max(start, 0), min(end, len(x))
    if b > a:
        out[a - start:b - start] = x[a:b]
    return out


@dataclass(frozen=True)
class _Fit:
    start: int  # the block: target samples [start, end)
    end: int
    peak: int  # delay of the correlation peak, samples
    first_tap: int  # delay of h[0], samples
    h: np.ndarray
    confident: bool  # the block's own fit explains its leak


def _fit_block(source: np.ndarray, target: np.ndarray, s: int, e: int, lags: tuple[int, int],
               settings: CrosstalkSettings) -> tuple[int, int, np.ndarray]:
    """(peak delay, delay of the first tap, FIR taps) for target[s:e], by least squares around the
    delay where the tracks correlate most."""
    from scipy.linalg import solve_toeplitz
    from scipy.signal import correlate

    y = target[s:e].astype(np.float64)
    lo = lags[0] - settings.taps_before
    hi = lags[1] + settings.taps_after
    # c[j] = sum_t y[t] * source[s + t - k] with k = hi - j, for k in [lo, hi]
    c = correlate(_segment(source, s - hi, e - lo), y, mode="valid", method="fft")
    k_of = hi - np.arange(len(c))
    inside = (k_of >= lags[0]) & (k_of <= lags[1])
    peak = int(k_of[inside][np.argmax(np.abs(c[inside]))])
    k0 = peak - settings.taps_before
    n_taps = settings.taps_before + settings.taps_after + 1
    p = c[hi - k0 - np.arange(n_taps)]  # cross-correlation at delays k0 .. k0 + n_taps - 1
    x = _segment(source, s - k0 - n_taps + 1, e - k0)
    # autocorrelation at the few lags needed, as dot products: np.correlate took 0.2 s per block
    # here (1,000 times slower than this), most of a five-minute call's analysis
    v = x[n_taps - 1:]
    r = (np.lib.stride_tricks.sliding_window_view(x, len(v)) @ v)[::-1][:n_taps]
    r[0] += 1e-3 * r[0] + 1e-9  # diagonal loading: silence in the source leaves r singular
    return peak, k0, solve_toeplitz(r, p)


def _predict(source: np.ndarray, s: int, e: int, first_tap: int, h: np.ndarray) -> np.ndarray:
    """The leak in target[s:e]: sum over i of h[i] * source[t - first_tap - i]."""
    x = _segment(source, s - first_tap - len(h) + 1, e - first_tap)
    pred: np.ndarray = np.convolve(x, h, mode="valid")[: e - s]
    return pred


def _energies(y: np.ndarray, pred: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _frame_energy(y, frame), _frame_energy(y - pred, frame), _frame_energy(pred, frame)


def _search_lags(source: np.ndarray, target: np.ndarray, *, rate_hz: int, settings: CrosstalkSettings
                 ) -> tuple[int, int]:
    """The delays the blocks search: `search_s` either side of where the whole tracks correlate
    most (at 2 kHz, cheap over a whole call), within [min_delay_s, max_delay_s]. Searching every
    block over 2 s cost 7 s on a five-minute call."""
    from scipy.signal import correlate

    lo, hi = int(settings.min_delay_s * rate_hz), int(settings.max_delay_s * rate_hz)
    q = max(1, rate_hz // 2000)
    n = min(len(source), len(target)) // q * q
    # block means: a crude low-pass, enough to find a delay to within `search_s`
    a = source[:n].reshape(-1, q).mean(axis=1, dtype=np.float64)
    b = target[:n].reshape(-1, q).mean(axis=1, dtype=np.float64)
    c = correlate(b, a, mode="full", method="fft")  # c[len(a) - 1 + k]: b[t] against a[t - k]
    ks = np.arange(max(lo // q, -(len(a) - 1)), min(hi // q, len(b) - 1) + 1)
    if len(ks) == 0:
        return lo, hi
    k = int(ks[np.argmax(np.abs(c[len(a) - 1 + ks]))]) * q
    w = int(settings.search_s * rate_hz)
    return max(lo, k - w), min(hi, k + w)


def _block_fits(source: np.ndarray, target: np.ndarray, *, frame: int, block: int, lags: tuple[int, int],
                settings: CrosstalkSettings) -> list[_Fit]:
    """A fit per block in which the source could have leaked. Confident: the fit takes away
    `min_block_erle_db` or more in the upper quarter of the frames the leak reaches (a fit to an
    uncorrelated voice takes away next to nothing)."""
    fits = []
    usable = len(target) // frame * frame
    for s in range(0, usable, block):
        e = min(s + block, usable)
        if not np.any(_segment(source, s - lags[1], e - lags[0])):
            continue
        peak, k0, h = _fit_block(source, target, s, e, lags, settings)
        ey, er, ep = _energies(target[s:e].astype(np.float64), _predict(source, s, e, k0, h), frame)
        active = ep > settings.min_leak_rms**2
        reduction_db = 10 * np.log10((ey[active] + 1e-20) / (er[active] + 1e-20))
        # a leak is quieter than its source: a 'leak' louder than it is the target's own voice,
        # predicted from the residue of its echo in the source track
        gain_db = 10 * np.log10((ep.sum() + 1e-20) / (_frame_energy(source[s:e], frame).sum() + 1e-20))
        confident = (bool(active.any()) and gain_db <= settings.max_gain_db
                     and float(np.percentile(reduction_db, 75)) >= settings.min_block_erle_db)
        fits.append(_Fit(s, e, peak, k0, h, confident))
    return fits


def remove_leak(source: np.ndarray, target: np.ndarray, *, rate_hz: int,
                settings: CrosstalkSettings = DEFAULT_CROSSTALK) -> Cleaned:
    """`target` with the leaked copy of `source` removed (see the module's description)."""
    if settings.method not in METHODS:
        raise InputError(f"unknown cross-talk method {settings.method!r}; expected one of {', '.join(METHODS)}")
    frame = int(settings.frame_s * rate_hz)
    block = max(frame, int(settings.block_s * rate_hz) // frame * frame)
    lags = _search_lags(source, target, rate_hz=rate_hz, settings=settings)
    fits = _block_fits(source, target, frame=frame, block=block, lags=lags, settings=settings)
    confident = [f for f in fits if f.confident]
    out = target.astype(np.float32, copy=True)
    leak_frames = np.zeros(len(target) // frame, dtype=bool)
    blocks: list[_BlockOut] = []
    leak_in = leak_out = 0.0
    for f in fits if confident else ():
        block_out = _clean_block(source, target, f, _candidates(f, confident), frame=frame, settings=settings)
        if block_out is None:
            continue
        blocks.append(block_out)
        leak_in += block_out.leak_in
        leak_out += block_out.leak_out
        out[f.start:f.end] = block_out.samples
        leak_frames[f.start // frame:f.end // frame] = block_out.alone
    found = bool(blocks)
    # delay and level from the confident blocks the filters cancel (elsewhere the fit is no measure)
    measured = [b for b in blocks if b.measures] or blocks
    delays = [b.peak for b in measured]
    pred_energy, src_energy = sum(b.pred_energy for b in measured), sum(b.src_energy for b in measured)
    report = LeakReport(
        found=found,
        delay_ms=round(1000.0 * float(np.median(delays)) / rate_hz, 1) if found else None,
        gain_db=round(float(10 * np.log10(pred_energy / src_energy)), 1) if found and src_energy > 0 else None,
        erle_db=round(float(10 * np.log10(leak_in / leak_out)), 1) if leak_out > 0 and settings.method == "cancel"
        else None,
        leak_s=round(float(leak_frames.sum()) * settings.frame_s, 2), blocks=len(blocks),
        blocks_total=len(range(0, len(target) // frame * frame, block)))
    return Cleaned(out if found else target, report)


@dataclass(frozen=True)
class _BlockOut:
    samples: np.ndarray  # the block cleaned
    alone: np.ndarray  # per frame: the leak alone, set to silence
    peak: int  # delay of the filter most frames took, samples
    pred_energy: float  # of the predicted leak
    src_energy: float  # of the source at that delay
    leak_in: float  # energy of the leak-alone frames before and after (ERLE)
    leak_out: float
    cancels: bool  # the subtraction takes energy away (else only the level criterion applied)
    measures: bool  # and the block's own fit is confident: its delay and level are the leak's


def _clean_block(source: np.ndarray, target: np.ndarray, f: _Fit, cands: list[_Fit], *, frame: int,
                 settings: CrosstalkSettings) -> _BlockOut | None:
    """`f`'s block of `target` with the predicted leak subtracted (method "cancel") and the frames
    it explains set to silence; None when the source is silent there."""
    y = target[f.start:f.end].astype(np.float64)
    pred, choice, ep_any = _best_prediction(source, f, cands, y, frame)
    ey, er, ep = _energies(y, pred, frame)
    active = ep > settings.min_leak_rms**2
    if not active.any():
        return None
    # the filters do not cancel here (a path they cannot follow: module-loopback's resampler over
    # a 1.45 s lag): subtract nothing and let the leak's level find it
    cancels = settings.method == "cancel" and er[active].sum() < ey[active].sum()
    if not cancels:
        er = ey
    use = cands[int(np.bincount(choice, minlength=len(cands)).argmax())]
    reduction_db = 10 * np.log10((ey + 1e-20) / (er + 1e-20))
    if settings.method == "cancel":
        # explained: the copy takes most of the energy away, or the frame is hardly louder than
        # the loudest frame any candidate path predicts within +-2 frames (a drifting path moves
        # the leak, and where it jumps neither filter cancels it)
        ep_near = np.max([np.roll(ep_any, k) for k in range(-2, 3)], axis=0)
        alone = active & ((reduction_db >= settings.explained_db)
                          | (ey <= ep_near * 10 ** (settings.level_margin_db / 10)))
    else:
        alone = active & (10 * np.log10((ey + 1e-20) / (ep + 1e-20)) <= settings.margin_db)
    cleaned = y - pred if cancels else y.copy()
    # clearly the target party: louder than the leak and well above the track's noise floor
    voiced = active & ~alone & (er > ep) & (er > 4.0 * np.percentile(er, 10))
    alone = _held(alone, voiced, int(settings.hold_s / settings.frame_s))
    cleaned = cleaned.reshape(-1, frame)
    cleaned[alone] = 0.0
    return _BlockOut(cleaned.reshape(-1).astype(np.float32), alone, use.peak, float(np.sum(pred**2)),
                     float(np.sum(_segment(source, f.start - use.peak, f.end - use.peak) ** 2)),
                     float(np.sum(ey[alone])), float(np.sum(er[alone])), cancels, cancels and f.confident)


def _candidates(f: _Fit, confident: list[_Fit]) -> list[_Fit]:
    """The filters that may hold in `f`'s block: its own fit when confident and the nearest
    confident fits before and after it. A block too quiet or too busy with double talk to fit alone
    borrows them (its own fit is biased by the other voice); and the echo path can jump mid-block
    (PulseAudio's output moved it by 118 ms in the middle of a caller line under load), which no
    single filter of the block follows."""
    before = [c for c in confident if c.start < f.start]
    after = [c for c in confident if c.start > f.start]
    out = [f] if f.confident else []
    out += [max(before, key=lambda c: c.start)] if before else []
    out += [min(after, key=lambda c: c.start)] if after else []
    return out


def _best_prediction(source: np.ndarray, f: _Fit, cands: list[_Fit], y: np.ndarray, frame: int,
                     smooth: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The predicted leak in `y` (target[f.start:f.end]), per frame from the candidate filter that
    leaves the least residue over that frame and `smooth` frames either side (a few fixed filters of
    the source cannot explain the other party's voice, so the choice follows the leak path).
    Returns (prediction, index of the chosen candidate per frame, the loudest candidate's
    predicted energy per frame)."""
    preds = np.stack([_predict(source, f.start, f.end, c.first_tap, c.h) for c in cands])
    n = len(y) // frame
    residue = np.stack([_frame_energy(y - p, frame) for p in preds])
    kernel = np.ones(2 * smooth + 1)
    smoothed = np.stack([np.convolve(r, kernel, mode="same") for r in residue])
    choice = np.argmin(smoothed, axis=0)
    pred = preds[:, : n * frame].reshape(len(cands), n, frame)[choice, np.arange(n)].reshape(-1)
    loudest = np.max([_frame_energy(p, frame) for p in preds], axis=0)
    return pred, choice, loudest


def _held(alone: np.ndarray, voiced: np.ndarray, hold: int) -> np.ndarray:
    """`alone` without the frames within `hold` frames after a voiced one (the target party's
    words fade into the leak: their soft ends must reach the VAD)."""
    if hold <= 0 or not voiced.any():
        return alone
    recent = np.convolve(voiced.astype(np.int32), np.ones(hold + 1, dtype=np.int32))[: len(voiced)] > 0
    return alone & ~recent


@dataclass(frozen=True)
class TrackLeak:
    source: str  # whose voice leaked ("caller")
    target: str  # into whose track ("trainee")
    report: LeakReport

    def warning(self) -> str:
        r = self.report
        return (f"the {self.source}'s voice leaks into the {self.target}'s track ({r.gain_db:+.0f} dB, "
                f"{r.delay_ms:.0f} ms late): removed before the analysis ({r.leak_s:.1f} s of leak alone "
                "set to silence); a headset or separate rooms avoid it")


def remove_crosstalk(tracks: dict[str, Audio], *, settings: CrosstalkSettings = DEFAULT_CROSSTALK
                     ) -> tuple[dict[str, Audio], tuple[TrackLeak, ...]]:
    """Both parties' tracks (same rate, same start) with each one's leak of the other removed.

    The caller's voice in the trainee's track first (a loudspeaker, the common case); then the
    trainee's in the caller's, with the cleaned trainee track as reference, so that a leak in one
    track cannot make the other party's own voice look like a leak of it."""
    if "caller" not in tracks or "trainee" not in tracks:
        return tracks, ()
    out = dict(tracks)
    found = []
    for source, target in (("caller", "trainee"), ("trainee", "caller")):
        a, b = out[source], out[target]
        if a.rate_hz != b.rate_hz:
            raise InputError(f"cross-talk: the tracks differ in rate ({a.rate_hz} and {b.rate_hz} Hz)")
        if min(len(a.samples), len(b.samples)) < int(settings.block_s * b.rate_hz):
            continue  # shorter than one fitting block: nothing to estimate a leak from (and empty breaks it)
        cleaned = remove_leak(a.samples, b.samples, rate_hz=b.rate_hz, settings=settings)
        if cleaned.report.found:
            out[target] = Audio(cleaned.samples, b.rate_hz)
            found.append(TrackLeak(source, target, cleaned.report))
    return out, tuple(found)
