"""Preamble and sync-word search on one channel, tolerant of offset and chip errors.

Signal picture (one channel, complex baseband at fs = 500..800 kS/s)::

    z[n] --x exp(-2 pi j f_i n / fs)--> window sum over one chip --|.|^2--> E_i(n)
           tones f_i = i * step, |f_i| <= 75 kHz + deviation
           (step 25 kHz; 12.5 kHz for the 50 kcps GFSK downlink)

    hypothesis j = (carrier offset c_j, deviation d_j), |c_j| <= 75 kHz in steps,
    d_j the mode's deviation (mode S also 75 kHz):
        chip(n) = E_{c_j + d_j}(n) > E_{c_j - d_j}(n)      (1 = upper tone, modes.py)

    chip-rate hypotheses r (``ChipFamily.rate_errors``, 3 % apart, 0 first),
    T_r = sps / (1 + e_r) samples per chip, windows of T_r samples;
    grid: 4 points per chip, t_g = g * T_r / 4; register (r, j, g mod 4) shifts in
    chip(floor(t_g)) and holds the last K chips sampled one chip apart;
    a match = at most ``max_errors`` of the K pattern chips wrong, and at most
    ``max_sync_errors`` of those in the sync word (so the preamble never matches).

A window sum of one chip is the noncoherent matched filter of a tone: it integrates
before the square, so the detector keeps working far below the FM-discriminator
threshold, and trying offsets a step apart loses at most ~1 dB (half a step is a
quarter of mode S's 32.768 kcps chip rate, less for the faster modes).  The pattern
is the last "01" preamble pairs and the sync word (reference 1.3): 12 pairs + 10
chips for T/C and C2, 8 pairs + 18 chips for S; 34 chips either way.

Matches of one rate hypothesis within two chips of each other are one: the fewest
errors wins, then the most tone energy over the last few chips (the best-fitting
offset), then the first.  The rate hypotheses' matches within two chips of the first
are then one candidate: the fewest errors, then the most energy per window sample
squared, then the hypothesis nearest the nominal rate.  It is reported with its
sync end, offset, deviation and chip period.  The fine carrier offset, deviation and
timing are the packet demodulator's job (``dsp.header``, ``dsp.timing``).

State (registers, energies, grid position, pending candidate) lives in
``SyncScanner``; a scan resumes exactly where the previous block ended, or restarts
empty after ``reset``.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from dsp.chipfamily import ChipFamily
from dsp.kernels import helper, kernel
from dsp.modes import HIGH_FREQ_CHIP

__all__ = [
    "SyncCandidate",
    "GRID_PER_CHIP",
    "SyncScanner",
    "scan_reference",
    "tone_table",
]

#: Grid points (register phases) per chip.
GRID_PER_CHIP = 4
# Hypotheses reach +-75 kHz: with the half-step they cover the +-80 kHz of issue 4.
_MAX_HYP_HZ = 75_000.0
# Matches of one hypothesis this close (grid points) are the same burst.
_MERGE_GRID = 2 * GRID_PER_CHIP
# Matches of different chip-rate hypotheses this close (longest chips) are one burst.
_MERGE_CHIPS = 2.0
# Grid samples per chunk of the scan's prefix sums (memory, not results).
_SCAN_CHUNK = 4096
# Table length of the tone mixers when the exact period is longer.
_MAX_TONE_PERIOD = 4096


def tone_table(
    sample_rate_hz: float, n_side: int, step_hz: float
) -> tuple[npt.NDArray[np.complex64], float]:
    """Mixers exp(-2 pi j f_i k / fs) for tones f_i = i * step, |i| <= n_side.

    Returns
    -------
    table : numpy.ndarray of complex64, shape (2 * n_side + 1, period)
        Row i is tone (i - n_side) * step over one full period of all tones.
    step_hz : float
        Actual tone spacing (``step_hz`` rounded so that one table period is exact).
    """
    ratio = Fraction(step_hz / sample_rate_hz).limit_denominator(_MAX_TONE_PERIOD)
    period, step = ratio.denominator, ratio.numerator
    k = np.arange(period, dtype=np.int64)
    rows = np.arange(-n_side, n_side + 1, dtype=np.int64)[:, None]
    cycles = ((rows * step * k) % period) / period
    return np.exp(-2j * np.pi * cycles).astype(np.complex64), float(
        ratio
    ) * sample_rate_hz


@helper
def _popcount64(x):
    """Set bits of a uint64 (SWAR sums; shifts and adds only, so that the pure-Python
    run under NUMBA_DISABLE_JIT has no wrapping multiply)."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + (
        (x >> np.uint64(2)) & np.uint64(0x3333333333333333)
    )
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    x = x + (x >> np.uint64(8))
    x = x + (x >> np.uint64(16))
    x = x + (x >> np.uint64(32))
    return x & np.uint64(0x7F)


@kernel(
    "i8(c8[::1], i8, i8, c8[:, ::1], i8[::1], i8[::1], i8[::1], f8[::1], u8, u8, i8, "
    "u8, i8, i8, i8[:, ::1], u8[:, :, ::1], f8[:, :, ::1], f8[::1], i8[:, ::1], "
    "f8[::1])"
)
def _scan_kernel(
    seg,
    seg_start,
    stop,
    table,
    hyp_hi,
    hyp_lo,
    wins,
    steps,
    pattern,
    mask,
    max_err,
    sync_mask,
    max_sync_err,
    merge,
    state,
    regs,
    captured,
    pend_energy,
    out,
    out_energy,
):
    """Scan channel samples up to absolute index ``stop`` for the pattern, once per
    chip-rate hypothesis r (grid step ``steps[r]``, chip window ``wins[r]``).

    ``seg`` holds absolute samples seg_start .. stop - 1 and must reach back
    ``wins[r]`` samples before each hypothesis' first grid point to process.
    ``state`` (int64, (R, 6)) per hypothesis = [next grid index, first grid index
    allowed to match, pending grid, pending hyp, pending errors (-1: none), pending
    window end]; ``regs`` (uint64, (R, n_hyp, 4)) the chip registers; ``captured``
    (float64, (R, n_hyp, 4)) each register's recent tone energy (a running average
    over about four chips), which breaks ties between offsets that match equally
    well; ``pend_energy`` (float64, (R,)) the pending one's.  Writes (grid, hyp,
    errors, r) rows into ``out`` and the captured energy into ``out_energy``;
    returns their number, hypothesis by hypothesis within each chunk of samples.
    The tone mixing (the costly part) is shared by all hypotheses.
    """
    n_tones = table.shape[0]
    period = table.shape[1]
    n_rates = steps.shape[0]
    max_win = 0
    for r in range(n_rates):
        max_win = max(max_win, wins[r])
    # The mixed tones' prefix sums are built one chunk of grid samples at a time
    # (chunks end at multiples of _SCAN_CHUNK), so that memory stays small for any
    # segment; each chunk's sums start a window before it.
    prefix = np.zeros((n_tones, _SCAN_CHUNK + max_win + 1), dtype=np.complex128)
    energy = np.empty(n_tones, dtype=np.float64)
    n_out = 0
    n_hyp = hyp_hi.shape[0]
    n_reg = regs.shape[2]
    lo = stop
    for r in range(n_rates):
        lo = min(lo, np.int64(np.floor(state[r, 0] * steps[r])))
    while lo < stop:
        hi = min(stop, (lo // _SCAN_CHUNK + 1) * _SCAN_CHUNK)
        base = max(seg_start, lo - max_win)  # absolute index of prefix[:, 0]
        for i in range(n_tones):
            acc = 0j
            ph = base % period
            for k in range(base, hi):
                acc += seg[k - seg_start] * table[i, ph]
                prefix[i, k - base + 1] = acc
                ph += 1
                if ph == period:
                    ph = 0
        for r in range(n_rates):
            g = state[r, 0]
            win = wins[r]
            step = steps[r]
            while True:
                last = np.int64(np.floor(g * step))
                if last >= hi:
                    break
                k1 = last - base + 1
                for i in range(n_tones):
                    d = prefix[i, k1] - prefix[i, k1 - win]
                    energy[i] = d.real * d.real + d.imag * d.imag
                ph = g % n_reg
                for j in range(n_hyp):
                    e_one = energy[hyp_hi[j]]
                    e_zero = energy[hyp_lo[j]]
                    bit = np.uint64(1) if e_one > e_zero else np.uint64(0)
                    reg = ((regs[r, j, ph] << np.uint64(1)) | bit) & mask
                    regs[r, j, ph] = reg
                    captured[r, j, ph] = 0.75 * captured[r, j, ph] + e_one + e_zero
                    if g < state[r, 1]:
                        continue
                    diff = reg ^ pattern
                    err = np.int64(_popcount64(diff))
                    if err > max_err:
                        continue
                    if np.int64(_popcount64(diff & sync_mask)) > max_sync_err:
                        continue
                    better = (
                        state[r, 4] < 0
                        or err < state[r, 4]
                        or (err == state[r, 4] and captured[r, j, ph] > pend_energy[r])
                    )
                    if better:
                        if state[r, 4] < 0:
                            state[r, 5] = g + merge
                        state[r, 2] = g
                        state[r, 3] = j
                        state[r, 4] = err
                        pend_energy[r] = captured[r, j, ph]
                if state[r, 4] >= 0 and g >= state[r, 5]:
                    out[n_out, 0] = state[r, 2]
                    out[n_out, 1] = state[r, 3]
                    out[n_out, 2] = state[r, 4]
                    out[n_out, 3] = r
                    out_energy[n_out] = pend_energy[r]
                    n_out += 1
                    state[r, 4] = -1
                g += 1
            state[r, 0] = g
        lo = hi
    return n_out


@dataclass(frozen=True, slots=True)
class SyncCandidate:
    """A pattern match: where, at which coarse carrier offset and chip rate, how good.

    Attributes
    ----------
    end_sample : int
        Channel sample index one past the last sample of the last pattern chip's
        window (the nominal end of the sync word).
    cfo_hz : float
        Coarse carrier offset, Hz (the hypothesis' centre, 25 kHz grid).
    errors : int
        Pattern chips that differed.
    deviation_hz : float
        Deviation of the hypothesis that matched, Hz.
    period : float
        Samples per chip of the chip-rate hypothesis that matched.
    """

    end_sample: int
    cfo_hz: float
    errors: int
    deviation_hz: float
    period: float


class SyncScanner:
    """Streaming pattern search on one channel (see the module docstring).

    Every chip-rate hypothesis of the family (``ChipFamily.rate_errors``) scans with
    its own grid and registers; their matches of one burst are merged here: the
    fewest errors, then the most captured energy per window sample squared (windows
    differ in length), then the earliest hypothesis in the family's order.

    Parameters
    ----------
    family : ChipFamily
    sample_rate_hz : float
        Channel sample rate, Hz.
    """

    def __init__(self, family: ChipFamily, sample_rate_hz: float) -> None:
        self.family = family
        self.sample_rate_hz = float(sample_rate_hz)
        self.periods = np.array(family.chip_periods(sample_rate_hz))
        self.grid_steps = self.periods / GRID_PER_CHIP
        self.windows = np.maximum(1, np.round(self.periods)).astype(np.int64)
        step = family.tone_step_hz
        n_devs = [int(round(dev / step)) for dev in family.deviations_hz]
        n_side = int(round(_MAX_HYP_HZ / step))
        self.table, self.tone_step_hz = tone_table(
            sample_rate_hz, n_side + max(n_devs), step
        )
        # one hypothesis per (deviation, offset): rows of its two tones in the table
        offsets = np.tile(np.arange(-n_side, n_side + 1), len(n_devs))
        devs = np.repeat(n_devs, 2 * n_side + 1)
        centre = n_side + max(n_devs)  # row of tone 0
        upper, lower = centre + offsets + devs, centre + offsets - devs
        # chip 1 = upper tone when HIGH_FREQ_CHIP == 1 (dsp.modes)
        one, zero = (upper, lower) if HIGH_FREQ_CHIP == 1 else (lower, upper)
        self.hyp_one = one.astype(np.int64)
        self.hyp_zero = zero.astype(np.int64)
        self.hyp_cfo_hz = offsets * self.tone_step_hz
        self.hyp_dev_hz = devs * self.tone_step_hz
        bits = [int(c) for c in family.pattern]
        self.pattern = np.uint64(int("".join(map(str, bits)), 2))
        self.mask = np.uint64((1 << len(bits)) - 1)
        self.sync_mask = np.uint64((1 << family.sync_chips) - 1)
        n_rates, n_hyp = self.periods.size, offsets.size
        self.regs = np.zeros((n_rates, n_hyp, GRID_PER_CHIP), dtype=np.uint64)
        self.captured = np.zeros((n_rates, n_hyp, GRID_PER_CHIP), dtype=np.float64)
        self.pend_energy = np.zeros(n_rates, dtype=np.float64)
        self.state = np.zeros((n_rates, 6), dtype=np.int64)
        self.state[:, 4] = -1
        # matches of one burst under different rates end within _MERGE_CHIPS of the
        # first; a hypothesis reports its match at most _MERGE_GRID grid points late
        longest = float(self.periods.max())
        self._merge_samples = _MERGE_CHIPS * longest
        self.decision_lag = int(
            np.ceil(self._merge_samples + (_MERGE_GRID / GRID_PER_CHIP + 1) * longest)
        )
        # per-rate matches not yet merged: (end, errors, -energy, rate, hyp)
        self._held: list[tuple[int, int, float, int, int]] = []

    @property
    def history_samples(self) -> int:
        """Samples before the next grid point that a scan reads."""
        return int(self.windows.max()) + 1

    def next_sample(self) -> int:
        """Channel sample index of the next grid point any hypothesis processes."""
        return int(np.floor(self.state[:, 0] * self.grid_steps).min())

    def earliest_end(self) -> int:
        """Lowest ``end_sample`` a candidate not yet returned can have: matches held
        for the merge, matches pending in a hypothesis, or grid points to come."""
        ends = [self.next_sample()] + [m[0] for m in self._held]
        for r in np.flatnonzero(self.state[:, 4] >= 0):
            ends.append(int(np.floor(self.state[r, 2] * self.grid_steps[r])) + 1)
        return min(ends)

    def reset(self, at_sample: int) -> list[SyncCandidate]:
        """Empty the registers and continue from ``at_sample`` (at the earliest one
        chip window into the stream); return the candidates still pending."""
        self._hold_pending()
        out = self._release(None)
        at_sample = max(int(at_sample), self.history_samples)
        for r, step in enumerate(self.grid_steps):
            g = int(np.ceil(at_sample / step))
            while np.floor(g * step) < at_sample:
                g += 1
            self.state[r, 0] = g
            self.state[r, 1] = g + GRID_PER_CHIP * self.family.n_pattern
        self.regs[:] = 0
        self.captured[:] = 0.0
        return out

    def _hold_pending(self) -> None:
        for r in np.flatnonzero(self.state[:, 4] >= 0):
            grid, hyp, errors = self.state[r, 2:5]
            self._hold(grid, hyp, errors, int(r), self.pend_energy[r])
            self.state[r, 4] = -1

    def _hold(self, grid: int, hyp: int, errors: int, r: int, energy: float) -> None:
        end = int(np.floor(grid * self.grid_steps[r])) + 1
        per_sample = float(energy) / float(self.windows[r]) ** 2
        self._held.append((end, int(errors), -per_sample, int(r), int(hyp)))

    def _release(self, scanned_to: int | None) -> list[SyncCandidate]:
        """Merge held matches into candidates, for every burst whose matches are all
        in (all when ``scanned_to`` is None): the first held match and those ending
        within the merge distance of it are one burst."""
        out = []
        self._held.sort()
        while self._held:
            first = self._held[0][0]
            if scanned_to is not None and scanned_to < first + self.decision_lag:
                break
            n = 1
            while (
                n < len(self._held) and self._held[n][0] <= first + self._merge_samples
            ):
                n += 1
            group, self._held = self._held[:n], self._held[n:]
            end, errors, _, r, hyp = min(group, key=lambda m: (m[1], m[2], m[3]))
            out.append(
                SyncCandidate(
                    end,
                    float(self.hyp_cfo_hz[hyp]),
                    int(errors),
                    float(self.hyp_dev_hz[hyp]),
                    float(self.periods[r]),
                )
            )
        return out

    def scan(
        self, seg: npt.NDArray[np.complex64], seg_start: int, stop: int
    ) -> list[SyncCandidate]:
        """Process every grid point whose sample lies before ``stop``.

        Parameters
        ----------
        seg : numpy.ndarray of complex64
            Channel samples from absolute index ``seg_start`` to ``stop`` - 1; must
            start at least ``history_samples`` before ``next_sample()``.
        seg_start, stop : int
            Absolute channel sample indices.

        Returns
        -------
        list of SyncCandidate
            Candidates whose merge window closed in this scan, in sample order.

        Raises
        ------
        ValueError
            If ``seg`` does not reach back far enough or is not complex64.
        """
        for row in self.scan_matches(seg, seg_start, stop):
            self._hold(*row)
        return self._release(self.next_sample())

    def scan_matches(
        self, seg: npt.NDArray[np.complex64], seg_start: int, stop: int
    ) -> list[tuple[int, int, int, int, float]]:
        """``scan`` before the merge of rates: (grid, hyp, errors, rate, energy) of
        each hypothesis' matches whose merge window closed (see ``scan``)."""
        if seg.dtype != np.complex64 or seg.size != stop - seg_start:
            raise ValueError("seg must be complex64 holding samples seg_start..stop-1")
        if self.next_sample() - seg_start < int(self.windows.max()) - 1:
            raise ValueError("seg must start a chip window before next_sample()")
        n_grid = int((stop - self.next_sample()) / self.grid_steps.min()) + 2
        rows = self.periods.size * (n_grid // _MERGE_GRID + 2)
        out = np.zeros((rows, 4), dtype=np.int64)
        out_energy = np.zeros(rows, dtype=np.float64)
        n_out = _scan_kernel(
            np.ascontiguousarray(seg),
            seg_start,
            stop,
            self.table,
            self.hyp_one,
            self.hyp_zero,
            self.windows,
            self.grid_steps,
            self.pattern,
            self.mask,
            self.family.max_errors,
            self.sync_mask,
            self.family.max_sync_errors,
            _MERGE_GRID,
            self.state,
            self.regs,
            self.captured,
            self.pend_energy,
            out,
            out_energy,
        )
        return [
            (int(g), int(h), int(e), int(r), float(en))
            for (g, h, e, r), en in zip(out[:n_out], out_energy[:n_out], strict=True)
        ]


def scan_reference(
    z: npt.NDArray[np.complex64],
    z_start: int,
    scanner: SyncScanner,
    first_grid: int,
    rate: int = 0,
) -> list[tuple[int, int, int]]:
    """Plain-numpy twin of ``SyncScanner.scan_matches`` for chip-rate hypothesis
    ``rate``, from empty registers.

    Window energies come from direct convolutions of each mixed tone with a box of
    one chip; each grid point's register is rebuilt from the chips K grid periods
    back; matches are merged by a separate pass.  Returns (grid, hyp, errors) of the
    matches whose merge window closed inside ``z`` (grid points from ``first_grid``
    whose sample lies in z[window:]).
    """
    win, step = int(scanner.windows[rate]), float(scanner.grid_steps[rate])
    n_tones, period = scanner.table.shape
    idx = (z_start + np.arange(z.size)) % period
    mixed = z.astype(np.complex128)[None, :] * scanner.table[:, idx].astype(
        np.complex128
    )
    # energy[i, n]: tone i over samples n - win + 1 .. n (valid from n = win - 1)
    box = np.ones(win)
    energy = np.array([np.abs(np.convolve(m, box)[: z.size]) ** 2 for m in mixed])
    g_all = np.arange(first_grid, first_grid + int(z.size / step) + 2)
    samples = np.floor(g_all * step).astype(np.int64) - z_start
    g_all = g_all[samples < z.size]
    samples = samples[samples < z.size]
    chips = energy[scanner.hyp_one][:, samples] > energy[scanner.hyp_zero][:, samples]
    # each register's recent energy: average with weight 0.75 per chip, register by
    # register (grid points GRID_PER_CHIP apart)
    power = (energy[scanner.hyp_one] + energy[scanner.hyp_zero])[:, samples]
    captured = np.zeros_like(power)
    for pos in range(power.shape[1]):
        back = captured[:, pos - GRID_PER_CHIP] if pos >= GRID_PER_CHIP else 0.0
        captured[:, pos] = 0.75 * back + power[:, pos]
    fam = scanner.family
    want = np.array([int(c) for c in fam.pattern], dtype=bool)
    n_pat = want.size
    matches = []
    for pos in range(GRID_PER_CHIP * n_pat, g_all.size):
        taps = pos - GRID_PER_CHIP * np.arange(n_pat - 1, -1, -1)
        wrong = chips[:, taps] != want[None, :]
        errors = wrong.sum(axis=1)
        sync_errors = wrong[:, n_pat - fam.sync_chips :].sum(axis=1)
        ok = (errors <= fam.max_errors) & (sync_errors <= fam.max_sync_errors)
        for hyp in np.flatnonzero(ok):
            matches.append(
                (int(g_all[pos]), int(hyp), int(errors[hyp]), float(captured[hyp, pos]))
            )
    return _merge_reference(matches, int(g_all[-1]) if g_all.size else first_grid)


def _merge_reference(
    matches: list[tuple[int, int, int, float]], last_grid: int
) -> list[tuple[int, int, int]]:
    """Keep the best match of each window of _MERGE_GRID grid points: fewest errors,
    then most captured energy, then the first."""
    out, best, window_end = [], None, 0
    for grid in sorted({m[0] for m in matches}):
        if best is not None and grid > window_end:
            out.append(best[:3])
            best = None
        for match in (m for m in matches if m[0] == grid):
            if best is None:
                best, window_end = match, grid + _MERGE_GRID
            elif (match[2], -match[3]) < (best[2], -best[3]):
                best = match
    if best is not None and last_grid >= window_end:
        out.append(best[:3])
    return out
