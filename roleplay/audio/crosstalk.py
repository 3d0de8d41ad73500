"""Cross-talk: one party's voice leaking into the other party's track, found and removed from the
audio alone.

A laptop without a headset, a speaker-phone, two lapel microphones in one room: the caller's voice
reaches the trainee's track tens of milliseconds late and 10 to 25 dB down, and the voice activity
detector takes it for the trainee. This module works on the two tracks of a call (a drill's call
directory, a stereo file, two files) and needs nothing else: in a drill the trainee track is
already aligned to the caller's playback (the echo then sits at ~0 ms, moved by `echo-offset`
shifts), in an imported recording it sits wherever the room put it.

The delay is searched per stretch of the source's speech (a caller line, cut into pieces of at
most 2 s) over -60 ms to 8 s by a normalised cross-correlation at 2 kHz, so that a path that moves
by seconds during the call (a loaded machine's microphone stream fell 0.9 s, then 7.5 s behind the
playback in a drill) is followed line by line. Per block of a second the leak is then modelled as
a short FIR filter of the source track around the delay where the two tracks correlate most within
150 ms of its stretches' delays (least squares: the other voice is uncorrelated with the source, so
it does not bias the fit; only its variance). Then, per 20 ms frame:

- the filtered source (the predicted leak) is subtracted: an echo canceller with a known reference
  (`method="cancel"`), whose residue is what the target party said; where a filter fitted on a
  quarter of a second alone is confident and leaves less, its prediction is subtracted instead
  (module-loopback's resampler moves the path by fractions of a sample within a second);
- a frame whose energy the predicted leak explains (it takes away `explained_db` or more, or the
  frame is at most `level_margin_db` louder than the predicted leak) is the leak alone and is set
  to silence, unless the target party was clearly heard just before (`hold_s`,
  so the soft ends of their words stay); real double talk adds energy the copy cannot explain and
  stays;
- double talk under a louder leak: the level rules take a frame for the leak alone when the
  copy takes 6 dB away, which it also does where the target party speaks 9 dB under the leak.
  Such a frame is kept when the subtraction left far more there (`double_talk_db`) than it leaves
  of the leak alone elsewhere in the block, what it left is not the source's voice (a local
  least-squares fit on the source explains under `double_talk_share` of it: a path the filters
  lost for a moment leaves the leak itself, which that fit explains), and the target party is
  clearly heard within `double_talk_near_s`: the rule completes the target's speech, it does not
  start any (in live drills over module-loopback a few frames of lost path per call pass the
  other two tests).

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
from itertools import pairwise

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
    # rooms and phone paths: tens of milliseconds; a drill whose lag measurement failed (no chirp
    # heard) leaves the echo at the device's whole latency (1.46 s seen over virtual devices), and
    # under overload the microphone stream fell behind the playback: 0.9 s early, 7.5 s late in a call
    max_delay_s: float = 8.0
    search_s: float = 0.15  # each block searches this far either side of its stretch's delay
    stretch_gap_s: float = 0.5  # source speech this close together is one stretch (a caller line)
    # longer stretches are cut: the delay can move within a line, and where the echo of a line
    # runs into the other party's speech its part before them still shows the delay
    stretch_max_s: float = 2.0
    # normalised correlation (2 kHz) under this: the stretch's own peak is not trusted (no leak, or
    # drowned by the other voice) and it takes its nearest trusted neighbour's delays. Chance peaks
    # reached 0.28 (one 0.44) on a clean five-minute call, 0.26 under double talk in a drill; leaks
    # alone 0.4 to 0.8 in live drills, 0.98 and more planted
    stretch_min_score: float = 0.3
    stretch_move_score: float = 0.4  # the path moves to a distant peak this strong even when its old
    # delay is searched too
    block_s: float = 1.0  # the leak path drifts (module-loopback's resampler, output underflows)
    # The path also drifts within a block (module-loopback's resampler: a block's filter left 7 dB
    # of cancellation in live drills). Filters fitted on blocks this short (0: none) subtract
    # better there; they only refine the subtraction where they are confident, never decide which
    # frames are the leak alone: fitted on a short stretch of double talk they take the other
    # voice for leak (docs/benchmarks.md).
    refine_block_s: float = 0.25
    taps_before: int = 8  # FIR taps either side of the correlation peak: fractional delay, band limits
    taps_after: int = 40
    frame_s: float = 0.02
    explained_db: float = 6.0  # the copy takes this much of a frame's energy away: the leak alone
    # or the frame is at most this much louder than the predicted leak. 4 dB silenced the start of a
    # trainee cut-in 1 dB quieter than the leak (phone band); on the accuracy set's leak calls 1.5 to
    # 3 dB all keep every interruption with no phantom turn (docs/benchmarks.md)
    level_margin_db: float = 2.5
    hold_s: float = 0.2
    # where the filters do not cancel (the path moved at a dropout), only this many clearly-target
    # frames in a row hold: one frame over a predicted leak at the old delay made a phantom
    # backchannel in a live drill; in cancelling blocks one frame holds (a word's soft end)
    hold_run: int = 2
    # double talk under a louder leak: a frame the level rules call the leak alone whose residue is
    # this far above what the subtraction leaves of the leak alone (`_leak_residue`) and which the
    # source explains less than `double_talk_share` of (`_source_share`) is the target party (0:
    # off). Chosen on the planted double talk of tests/test_crosstalk.py and five live drills: a
    # share of 0.2 kept a run of leak in one drill (a phantom turn), 0.1 none (docs/benchmarks.md)
    double_talk_db: float = 10.0
    double_talk_min_frames: int = 10  # leak-alone frames a block needs to measure that residue
    double_talk_share: float = 0.1
    # frames in a row it keeps before they hold the frames after them (`hold_s`): one lone frame
    # with its hold made a phantom backchannel in a live drill
    double_talk_run: int = 3
    # only this close to a frame that is clearly the target party (louder than the predicted leak):
    # a few frames of a lost path, over 0.5 s from any such frame, made a phantom backchannel in a
    # live drill of a CI rehearsal; 0.5 s keeps every double-talk frame of the planted set that
    # the rule keeps without it (docs/benchmarks.md)
    double_talk_near_s: float = 0.5
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
    window: tuple[int, int]  # the delays it searched, samples


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


@dataclass(frozen=True)
class _Stretch:
    start: int  # source samples [start, end): a stretch of speech, a caller line or part of one
    end: int
    delays: tuple[int, ...]  # samples: where the target may hold it (the block fits decide)
    score: float  # normalised correlation at the first


def _stretch_spans(source: np.ndarray, *, frame: int, settings: CrosstalkSettings) -> list[tuple[int, int]]:
    """[start, end) of the source's stretches of speech: frames within 40 dB of its loud frames,
    joined over gaps under `stretch_gap_s`, cut into pieces of at most `stretch_max_s`."""
    energy = _frame_energy(source, frame)
    if not len(energy) or energy.max() <= 0:
        return []
    active = energy > max(np.percentile(energy, 95) * 1e-4, settings.min_leak_rms**2)
    idx = np.flatnonzero(active)
    if not len(idx):
        return []
    breaks = np.flatnonzero(np.diff(idx) > settings.stretch_gap_s / settings.frame_s)
    spans = []
    max_frames = max(1, int(settings.stretch_max_s / settings.frame_s))
    for a, b in zip(np.r_[idx[0], idx[breaks + 1]], np.r_[idx[breaks], idx[-1]], strict=True):
        pieces = -(-(b + 1 - a) // max_frames)
        edges = np.linspace(a, b + 1, pieces + 1).round().astype(int)
        spans += [(int(x) * frame, int(y) * frame) for x, y in pairwise(edges)]
    return spans


def _stretch_scores(a: np.ndarray, b: np.ndarray, b2: np.ndarray, s: int, e: int, k_lo: int, k_hi: int
                    ) -> np.ndarray:
    """Normalised correlation of a[s:e] with b at each delay k_lo .. k_hi (decimated samples;
    `b2` the cumulative energy of b). Normalised by the target's own level there, so a loud
    passage of the other voice does not win."""
    from scipy.signal import correlate

    x = a[s:e]
    c = correlate(_segment(b, s + k_lo, e + k_hi), x, mode="valid", method="fft")  # c[j]: delay k_lo + j
    t0 = np.clip(s + k_lo + np.arange(len(c)), 0, len(b))
    t1 = np.clip(t0 + len(x), 0, len(b))
    # and a target quieter than 40 dB under the source (a leak that faint does not matter) as 40 dB
    # under it: a window holding only the edge of a word matched by chance
    xx = max(float(x @ x), len(x) * DEFAULT_CROSSTALK.min_leak_rms**2)
    score: np.ndarray = np.abs(c) / np.sqrt(np.maximum(b2[t1] - b2[t0], 1e-4 * xx) * xx)
    return score


def _stretch_delays(source: np.ndarray, target: np.ndarray, *, rate_hz: int, settings: CrosstalkSettings
                    ) -> list[_Stretch]:
    """Each stretch's delays, in time order: where the target correlates most with it at 2 kHz over
    [min_delay_s, max_delay_s], and the delay of the stretches before (within `search_s` of it)
    unless that explains it nearly as well (0.7 of the peak): the block fits then decide. Another
    line of the same voice seconds away made a chance peak twice the true one where the trainee
    talked over a line whose echo path jumped (a live drill). One window per call held neither a
    drill whose microphone fell seconds behind the playback nor the rooms' tens of milliseconds.
    Empty where no stretch has a trusted peak: no leak."""
    frame = int(settings.frame_s * rate_hz)
    q = max(1, rate_hz // 2000)
    k_lo, k_hi = int(settings.min_delay_s * rate_hz) // q, int(settings.max_delay_s * rate_hz) // q
    w = max(1, int(settings.search_s * rate_hz) // q)
    # block means: a crude low-pass, enough to find a delay to within `search_s`
    a = source[: len(source) // q * q].reshape(-1, q).mean(axis=1, dtype=np.float64)
    b = target[: len(target) // q * q].reshape(-1, q).mean(axis=1, dtype=np.float64)
    b2 = np.concatenate(([0.0], np.cumsum(b**2)))
    out: list[_Stretch] = []
    prev: int | None = None  # the path's delay so far, decimated samples
    for s, e in _stretch_spans(source, frame=frame, settings=settings):
        score = _stretch_scores(a, b, b2, s // q, e // q, k_lo, k_hi)
        j = int(np.argmax(score))
        js = [j]
        if prev is not None and abs(k_lo + j - prev) > w:
            near = score[max(0, prev - k_lo - w):max(0, prev - k_lo + w + 1)]
            j_near = max(0, prev - k_lo - w) + int(np.argmax(near)) if len(near) else j
            js = [j_near] if score[j_near] >= 0.7 * score[j] else [j, j_near]
        if score[js[0]] >= (settings.stretch_min_score if len(js) == 1 else settings.stretch_move_score):
            prev = k_lo + js[0]
        out.append(_Stretch(s, e, tuple((k_lo + x) * q for x in js), float(score[js[0]])))
    trusted = [st for st in out if st.score >= settings.stretch_min_score]
    if not trusted:
        return []
    # a stretch without a peak of its own (double talk over all of it) takes the delays of its
    # nearest trusted neighbours before and after it: the path moves, but not far between them
    return [st if st.score >= settings.stretch_min_score
            else _Stretch(st.start, st.end, _borrowed(st, trusted), st.score) for st in out]


def _borrowed(st: _Stretch, trusted: list[_Stretch]) -> tuple[int, ...]:
    before = [t for t in trusted if t.start < st.start]
    after = [t for t in trusted if t.start > st.start]
    near = [max(before, key=lambda t: t.start)] if before else []
    near += [min(after, key=lambda t: t.start)] if after else []
    return tuple(sorted({d for t in near for d in t.delays}))


def _block_windows(stretches: list[_Stretch], s: int, e: int, *, rate_hz: int, settings: CrosstalkSettings
                   ) -> list[tuple[int, int]]:
    """The delay windows to search in target[s:e]: `search_s` either side of the delay of each
    stretch whose leak can reach it, overlapping windows merged."""
    w = int(settings.search_s * rate_hz)
    lo, hi = int(settings.min_delay_s * rate_hz), int(settings.max_delay_s * rate_hz)
    reach = w + settings.taps_after + int(0.1 * rate_hz)  # and a short room tail
    windows = sorted((max(lo, d - w), min(hi, d + w)) for st in stretches for d in st.delays
                     if st.start + d - reach < e and st.end + d + reach > s)
    merged: list[tuple[int, int]] = []
    for a, b in windows:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _block_fits(source: np.ndarray, target: np.ndarray, *, frame: int, block: int, stretches: list[_Stretch],
                rate_hz: int, settings: CrosstalkSettings) -> list[list[_Fit]]:
    """Per block in which the source could have leaked, a fit per delay window. Confident: the fit
    takes away `min_block_erle_db` or more in the upper quarter of the frames the leak reaches (a
    fit to an uncorrelated voice takes away next to nothing)."""
    out = []
    usable = len(target) // frame * frame
    for s in range(0, usable, block):
        e = min(s + block, usable)
        fits = [_fit(source, target, s, e, lags, frame=frame, settings=settings)
                for lags in _block_windows(stretches, s, e, rate_hz=rate_hz, settings=settings)
                if np.any(_segment(source, s - lags[1], e - lags[0]))]
        if fits:
            out.append(fits)
    return out


def _fit(source: np.ndarray, target: np.ndarray, s: int, e: int, lags: tuple[int, int], *, frame: int,
         settings: CrosstalkSettings) -> _Fit:
    peak, k0, h = _fit_block(source, target, s, e, lags, settings)
    ey, er, ep = _energies(target[s:e].astype(np.float64), _predict(source, s, e, k0, h), frame)
    active = ep > settings.min_leak_rms**2
    reduction_db = 10 * np.log10((ey[active] + 1e-20) / (er[active] + 1e-20))
    # a leak is quieter than its source: a 'leak' louder than it is the target's own voice,
    # predicted from the residue of its echo in the source track
    gain_db = 10 * np.log10((ep.sum() + 1e-20)
                            / (_frame_energy(_segment(source, s - peak, e - peak), frame).sum() + 1e-20))
    confident = (bool(active.any()) and gain_db <= settings.max_gain_db
                 and float(np.percentile(reduction_db, 75)) >= settings.min_block_erle_db)
    return _Fit(s, e, peak, k0, h, confident, lags)


def _any_leak(source: np.ndarray, target: np.ndarray, stretches: list[_Stretch], *, frame: int, block: int,
              rate_hz: int, settings: CrosstalkSettings) -> bool:
    """Whether a block fit confirms any trusted stretch, strongest first: chance peaks of the
    other voice (17 of 186 stretches on a clean five-minute call) made fits for every block, 2 s of
    CPU for nothing; a leak is confirmed by its first stretch."""
    for st in sorted((st for st in stretches if st.score >= settings.stretch_min_score), key=lambda st: -st.score):
        for d in st.delays:
            for s in range(max(0, st.start + d) // block * block, min(st.end + d, len(target) // frame * frame), block):
                e = min(s + block, len(target) // frame * frame)
                for lags in _block_windows([st], s, e, rate_hz=rate_hz, settings=settings):
                    if _fit(source, target, s, e, lags, frame=frame, settings=settings).confident:
                        return True
    return False


def remove_leak(source: np.ndarray, target: np.ndarray, *, rate_hz: int,
                settings: CrosstalkSettings = DEFAULT_CROSSTALK) -> Cleaned:
    """`target` with the leaked copy of `source` removed (see the module's description)."""
    if settings.method not in METHODS:
        raise InputError(f"unknown cross-talk method {settings.method!r}; expected one of {', '.join(METHODS)}")
    frame = int(settings.frame_s * rate_hz)
    block = max(frame, int(settings.block_s * rate_hz) // frame * frame)
    stretches = _stretch_delays(source, target, rate_hz=rate_hz, settings=settings)
    if not _any_leak(source, target, stretches, frame=frame, block=block, rate_hz=rate_hz, settings=settings):
        stretches = []
    per_block = _block_fits(source, target, frame=frame, block=block, stretches=stretches, rate_hz=rate_hz,
                            settings=settings)
    confident = [f for fits in per_block for f in fits if f.confident]
    short = int(settings.refine_block_s * rate_hz) // frame * frame
    refined = [f for fits in (_block_fits(source, target, frame=frame, block=short, stretches=stretches,
                                          rate_hz=rate_hz, settings=settings) if confident and short else ())
               for f in fits if f.confident]
    out = target.astype(np.float32, copy=True)
    leak_frames = np.zeros(len(target) // frame, dtype=bool)
    subtracted = []
    for fits in per_block if confident else ():
        s, e = fits[0].start, fits[0].end
        cands = _candidates(fits, confident, settings.search_s * rate_hz)
        finer = [f for f in refined if f.start < e and f.end > s]
        sub = _subtract(source, target, s, e, cands, finer, measured=any(f.confident for f in fits),
                        frame=frame, settings=settings) if cands else None
        if sub is not None:
            subtracted.append(sub)
    residue = {sub.start: _leak_residue(sub, settings) for sub in subtracted if sub.measures}
    close = _near(_clearly_target(subtracted, len(target) // frame, frame),
                  int(settings.double_talk_near_s / settings.frame_s))
    blocks: list[_BlockOut] = []
    leak_in = leak_out = 0.0
    for sub in subtracted:
        # a block in double talk has no leak-alone frames of its own to measure: the blocks whose
        # filters it borrowed do
        ref = residue.get(sub.start)
        ref = _median([residue.get(c) for c in sub.borrowed]) if ref is None else ref
        block_out = _decide(source, sub, ref, close[sub.start // frame:sub.end // frame], frame=frame,
                            settings=settings)
        blocks.append(block_out)
        leak_in += block_out.leak_in
        leak_out += block_out.leak_out
        out[sub.start:sub.end] = block_out.samples
        leak_frames[sub.start // frame:sub.end // frame] = block_out.alone
    found = bool(blocks)
    # delay and level from the confident blocks the filters cancel (elsewhere the fit is no measure)
    measured = [b for b in subtracted if b.measures] or subtracted
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
class _Subtracted:
    """A block with the predicted leak subtracted, before its frames are decided."""

    start: int
    end: int
    cleaned: np.ndarray  # the residue (method "cancel") or the block as it was
    ey: np.ndarray  # per frame: energy of the block, of the residue of the block's filters,
    er: np.ndarray  # of the predicted leak, and of what the refined subtraction left
    ep: np.ndarray
    left: np.ndarray
    active: np.ndarray  # the predicted leak is audible
    alone: np.ndarray  # the level rules call the frame the leak alone
    peak: int  # delay of the filter most frames took, samples
    first_tap: int  # and of its first tap
    pred_energy: float  # of the predicted leak
    src_energy: float  # of the source at that delay
    cancels: bool  # the subtraction takes energy away (else only the level criterion applied)
    measures: bool  # and the block's own fit is confident: its delay and level are the leak's
    borrowed: tuple[int, ...]  # starts of the blocks whose filters it may use


@dataclass(frozen=True)
class _BlockOut:
    samples: np.ndarray  # the block cleaned
    alone: np.ndarray  # per frame: the leak alone, set to silence
    leak_in: float  # energy of the leak-alone frames before and after (ERLE)
    leak_out: float


def _subtract(source: np.ndarray, target: np.ndarray, s: int, e: int, cands: list[_Fit], finer: list[_Fit],
              *, measured: bool, frame: int, settings: CrosstalkSettings) -> _Subtracted | None:
    """target[s:e] with the predicted leak subtracted (method "cancel") and the frames the level
    rules call the leak alone; None when the source is silent there. `measured`: a fit of the
    block's own is confident."""
    y = target[s:e].astype(np.float64)
    pred, choice, ep_any = _best_prediction(source, s, e, cands, y, frame)
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
    for f in finer if cancels else ():
        # a confident short fit subtracts where it leaves less than the block's filters
        a, b = max(f.start, s) - s, min(f.end, e) - s  # a short block may straddle two long ones
        better = _predict(source, s + a, s + b, f.first_tap, f.h)
        rest = y[a:b] - better
        n = (b - a) // frame * frame
        less = np.repeat(_frame_energy(rest, frame) < _frame_energy(cleaned[a:b], frame), frame)[:n]
        cleaned[a:a + n][less] = rest[:n][less]
    return _Subtracted(s, e, cleaned, ey, er, ep, _frame_energy(cleaned, frame), active, alone, use.peak, use.first_tap,
                       float(np.sum(pred**2)), float(np.sum(_segment(source, s - use.peak, e - use.peak) ** 2)),
                       cancels, cancels and measured, tuple(sorted({c.start for c in cands} - {s})))


def _leak_residue(sub: _Subtracted, settings: CrosstalkSettings) -> float | None:
    """What the subtraction leaves of the leak alone in this block: the median, over the frames the
    level rules call the leak alone, of the residue against the predicted leak (a median of -20
    dB, 10th to 90th percentile -23 to -16 dB, both in planted leak calls and in live drills over
    module-loopback). None: too few such frames."""
    if sub.alone.sum() < settings.double_talk_min_frames:
        return None
    return float(np.median(sub.left[sub.alone] / sub.ep[sub.alone]))


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return float(np.median(known)) if known else None


def _source_share(source: np.ndarray, sub: _Subtracted, f: int, *, frame: int, settings: CrosstalkSettings,
                  width: int = 2) -> float:
    """How much of the residue around frame `f` (+-`width` frames) a least-squares filter of the
    source over the block's filter taps explains: 0.4 or more for 298 of 331 frames of leak the
    filters missed in five live drills (11 under 0.2), 0.01 to 0.20 (median 0.01 to 0.04) for the
    other party's voice in planted double talk."""
    n_taps = settings.taps_before + settings.taps_after + 1
    a, b = max(0, f - width) * frame, min(len(sub.cleaned) // frame, f + width + 1) * frame
    r = sub.cleaned[a:b]
    x = _segment(source, sub.start + a - sub.first_tap - n_taps + 1, sub.start + b - sub.first_tap)
    m = np.lib.stride_tricks.sliding_window_view(x, n_taps)[:, ::-1][: b - a]
    g = np.linalg.lstsq(m, r, rcond=None)[0]
    return float(1.0 - np.sum((r - m @ g) ** 2) / (np.sum(r**2) + 1e-20))


def _noise(sub: _Subtracted) -> float:
    """Well above the track's noise floor in this block."""
    return 4.0 * float(np.percentile(sub.er, 10))


def _voiced(sub: _Subtracted) -> np.ndarray:
    """Frames that are clearly the target party: not the leak alone by the level rules, louder than
    the predicted leak and well above the track's noise floor."""
    voiced: np.ndarray = sub.active & ~sub.alone & (sub.er > sub.ep) & (sub.er > _noise(sub))
    return voiced


def _clearly_target(subtracted: list[_Subtracted], n_frames: int, frame: int) -> np.ndarray:
    out = np.zeros(n_frames, dtype=bool)
    for sub in subtracted:
        out[sub.start // frame:sub.end // frame] = _voiced(sub)
    return out


def _near(mask: np.ndarray, n: int) -> np.ndarray:
    """Frames within `n` frames of a frame in `mask`."""
    c = np.concatenate(([0], np.cumsum(mask.astype(np.int64))))
    i = np.arange(len(mask))
    out: np.ndarray = c[np.minimum(i + n + 1, len(mask))] - c[np.maximum(i - n, 0)] > 0
    return out


def _decide(source: np.ndarray, sub: _Subtracted, leak_residue: float | None, close: np.ndarray, *, frame: int,
            settings: CrosstalkSettings) -> _BlockOut:
    """The block cleaned: the frames that are the leak alone set to silence. `leak_residue`: what
    the subtraction leaves of the leak alone here (`_leak_residue`), or None; `close`: per frame,
    the target party is clearly heard within `double_talk_near_s`."""
    alone = sub.alone.copy()
    voiced = _voiced(sub)
    if sub.cancels and leak_residue is not None and settings.double_talk_db > 0:
        # double talk under a louder leak: the level rules took these frames for the leak alone,
        # but the subtraction left far more than it leaves of the leak, what it left is not the
        # source's voice (a path the filters lost for a moment leaves the leak itself), and the
        # target party is clearly heard close by (lone frames were such a lost path in live drills)
        noise = _noise(sub)
        residue_high = alone & close & (sub.left > sub.ep * leak_residue * 10 ** (settings.double_talk_db / 10)) \
            & (sub.left > noise)
        for f in np.flatnonzero(residue_high):
            if _source_share(source, sub, int(f), frame=frame, settings=settings) < settings.double_talk_share:
                alone[f] = False
        if settings.double_talk_run:
            voiced |= _runs(sub.alone & ~alone, settings.double_talk_run) & (sub.er > sub.ep)
    # where the filters do not cancel, the predicted leak may sit at an old delay (the path moved
    # at a dropout): a lone frame over it is that misplaced leak, not a word whose end to keep
    holding = voiced if sub.cancels else _runs(voiced, settings.hold_run)
    alone = _held(alone, holding, int(settings.hold_s / settings.frame_s))
    cleaned = sub.cleaned.reshape(-1, frame).copy()
    cleaned[alone] = 0.0
    return _BlockOut(cleaned.reshape(-1).astype(np.float32), alone, float(np.sum(sub.ey[alone])),
                     float(np.sum(sub.left[alone])))


def _candidates(fits: list[_Fit], confident: list[_Fit], slack: float) -> list[_Fit]:
    """The filters that may hold in a block: its own confident fits and the nearest confident fits
    before and after it on the same path (their delay within `slack` of a window the block
    searched: where the path jumped by seconds, a neighbour's filter predicts a leak that is not
    there). A block too quiet or too busy with double talk to fit alone borrows them (its own fit
    is biased by the other voice); and the echo path can jump mid-block (PulseAudio's output moved
    it by 118 ms in the middle of a caller line under load), which no single filter follows."""
    start = fits[0].start

    def near(c: _Fit) -> bool:
        return any(f.window[0] - slack <= c.peak <= f.window[1] + slack for f in fits)

    before = [c for c in confident if c.start < start and near(c)]
    after = [c for c in confident if c.start > start and near(c)]
    out = [f for f in fits if f.confident]
    out += [max(before, key=lambda c: c.start)] if before else []
    out += [min(after, key=lambda c: c.start)] if after else []
    return out


def _best_prediction(source: np.ndarray, s: int, e: int, cands: list[_Fit], y: np.ndarray, frame: int,
                     smooth: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The predicted leak in `y` (target[s:e]), per frame from the candidate filter that
    leaves the least residue over that frame and `smooth` frames either side (a few fixed filters of
    the source cannot explain the other party's voice, so the choice follows the leak path).
    Returns (prediction, index of the chosen candidate per frame, the loudest candidate's
    predicted energy per frame)."""
    preds = np.stack([_predict(source, s, e, c.first_tap, c.h) for c in cands])
    n = len(y) // frame
    residue = np.stack([_frame_energy(y - p, frame) for p in preds])
    kernel = np.ones(2 * smooth + 1)
    smoothed = np.stack([np.convolve(r, kernel, mode="same") for r in residue])
    choice = np.argmin(smoothed, axis=0)
    pred = preds[:, : n * frame].reshape(len(cands), n, frame)[choice, np.arange(n)].reshape(-1)
    loudest = np.max([_frame_energy(p, frame) for p in preds], axis=0)
    return pred, choice, loudest


def _runs(mask: np.ndarray, n: int) -> np.ndarray:
    """`mask` without its runs shorter than `n` frames."""
    if n <= 1:
        return mask
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    out = np.zeros_like(mask)
    for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        if b - a >= n:
            out[a:b] = True
    return out


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
