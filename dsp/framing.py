"""From a sync candidate to a checked frame: header fit, chip tracking, line decoding,
length from the L-field, block CRCs.

Chips after the detection pattern, per radio channel (reference 1.3)::

    S   (868.3)    | Manchester frame ...                     S1, S1-m, S2, T2 downlink
    TC  (868.95)   | 3-of-6 frame ...                          T1, T2 meter -> other
                   | 0x54CD (A) or 0x543D (B) | NRZ frame ...  C1, C2 meter -> other
    C2  (869.525)  | 0x54CD (A) or 0x543D (B) | NRZ frame ...  C2 other -> meter

T and C share the sync 0x543D; after it a C frame sends 0x54, which 3-of-6 cannot
("010101" is no code word), so the marker's distance from 0x54CD / 0x543D orders the
readings to try: C first when the marker is within a few chips, T otherwise.  Every
reading that gives a valid length is tried; the block CRCs (``stack.frame``) decide.

Decoding runs in two steps, as the samples arrive: ``probe`` needs the header and
the first block (12 bytes) to fit the header, read L and check the first block's
CRC (format A), and tells how far the frame reaches; ``finish`` then tracks the chips
to the end and checks every CRC.  Both are pure functions of the channel samples, so
the result does not depend on how the stream was cut into blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.chipfamily import ChipFamily
from dsp.fsk import coherent_soft, measure_offset
from dsp.header import HeaderFit, fit_header
from dsp.modes import HIGH_FREQ_CHIP, get_phy
from dsp.softline import CHIPS_PER_BYTE, decode_soft
from dsp.sync import SyncCandidate
from dsp.timing import Track, correlate_chips, smooth_times, track_chips
from stack.frame import on_air_length, strip_crcs

__all__ = ["Reading", "Probe", "PacketResult", "PacketDecoder", "readings_for"]

# Header fits below this score (0 = noise, 1 = clean) are not packets.
_MIN_SCORE = 0.35
# A frame whose CRC fails is reported (emit_bad_crc) only when its header was this
# clean and its pattern had at most this many chip errors: noise is never reported.
_PLAUSIBLE_SCORE = 0.5
_PLAUSIBLE_ERRORS = 2
# 3-of-6 frames with more invalid words than this share are noise.
_MAX_INVALID_SHARE = 0.25
# Marker chips within this Hamming distance make the C reading worth trying.
_MAX_MARKER_ERRORS = 4
# Bytes of the first block of format A (L C M M A A A A A A + CRC, reference 2.2).
_FIRST_BLOCK_BYTES = 12
# Extra chips fetched beyond a frame's nominal end (timing drift, filter tails).
_MARGIN_CHIPS = 4
# Allowance for a slow chip clock when deciding how far a frame reaches.
_RATE_MARGIN = 1.05
# Chip clock gains (phase, rate) of the second tracking pass.
_NARROW_GAINS = (0.05, 0.001)


@dataclass(frozen=True, slots=True)
class Reading:
    """One way to read the chips after the detection pattern.

    Attributes
    ----------
    phy : str
        "S", "T", "C" or "C2".
    frame_format : str
        "A" or "B".
    line_code : str
        "manchester", "3of6" or "nrz".
    marker : str
        Chips between the pattern and the frame ("" or the 16-chip C marker).
    sync_chips : int
        Length of the mode's sync word, chips (for the frame's sample index).
    """

    phy: str
    frame_format: str
    line_code: str
    marker: str
    sync_chips: int


def readings_for(family: ChipFamily) -> list[Reading]:
    """Every reading a radio channel may carry (the receiver filters by phy)."""
    if family.name == "S":
        phy = get_phy("S1", "meter")
        return [Reading("S", "A", "manchester", "", len(phy.sync_chips))]
    if family.name == "TC":
        t_phy, c_phy = get_phy("T1", "meter"), get_phy("C1", "meter")
        return [Reading("T", "A", "3of6", "", len(t_phy.sync_chips))] + [
            Reading("C", fmt, "nrz", c_phy.marker_chips(fmt), len(c_phy.sync_chips))
            for fmt in ("A", "B")
        ]
    c2 = get_phy("C2", "other")
    return [
        Reading("C2", fmt, "nrz", c2.marker_chips(fmt), len(c2.sync_chips))
        for fmt in ("A", "B")
    ]


@dataclass(frozen=True, slots=True)
class Probe:
    """What the first step found: the header fit and the readings still in play.

    Attributes
    ----------
    fit : HeaderFit
    span_start : int
        Absolute channel sample where the prefix sums start.
    readings : tuple of (Reading, int)
        Readings to try in order, each with its frame's on-air chip count.
    need_sample : int
        Absolute channel sample index that must be available for ``finish``.
    """

    fit: HeaderFit
    span_start: int
    readings: tuple[tuple[Reading, int], ...]
    need_sample: int


@dataclass(frozen=True, slots=True)
class PacketResult:
    """A decoded frame and where it lies on the channel's time axis.

    Attributes
    ----------
    data : bytes
        On-air bytes, L to the last CRC.
    reading : Reading
    crc_ok : bool
    chip_errors : int
        Invalid 3-of-6 words or Manchester pairs (0 for NRZ).
    sync_time, end_time : float
        Channel sample times of the sync word's start and the frame's last chip end.
    cfo_hz : float
        Carrier offset on the channel, Hz.
    power : float
        Mean |z|^2 over the burst (full scale 1).
    """

    data: bytes
    reading: Reading
    crc_ok: bool
    chip_errors: int
    sync_time: float
    end_time: float
    cfo_hz: float
    power: float


class PacketDecoder:
    """Decodes the candidates of one radio channel (see the module docstring).

    Parameters
    ----------
    family : ChipFamily
    phys : sequence of str
        Receiver chains wanted on this channel ("T" and/or "C" on 868.95 MHz).
    sample_rate_hz : float
        Channel rate, Hz.
    emit_bad_crc : bool
        Also return frames whose CRCs fail (only when they look like real frames).
    """

    def __init__(
        self,
        family: ChipFamily,
        phys: tuple[str, ...],
        sample_rate_hz: float,
        emit_bad_crc: bool,
    ) -> None:
        self.family = family
        self.readings = [r for r in readings_for(family) if r.phy in phys]
        self.sample_rate_hz = float(sample_rate_hz)
        # the slowest chips the detector looks for
        self.longest_period = max(family.chip_periods(sample_rate_hz))
        self.emit_bad_crc = emit_bad_crc
        self.known = np.array([int(c) for c in family.pattern], dtype=np.uint8)
        self.probe_chips = max(
            len(r.marker) + _FIRST_BLOCK_BYTES * CHIPS_PER_BYTE[r.line_code]
            for r in self.readings
        )

    # -- step 1 -----------------------------------------------------------------------
    def probe_need(self, cand: SyncCandidate) -> int:
        """Absolute channel sample index ``probe`` needs."""
        chips = self.probe_chips * _RATE_MARGIN + _MARGIN_CHIPS
        return int(math.ceil(cand.end_sample + chips * cand.period))

    def lookback_samples(self) -> int:
        """Samples before a candidate's sync end that decoding reads, plus the
        detector's merge window (2 chips) a candidate may be reported late by."""
        chips = self.family.n_pattern * _RATE_MARGIN + _MARGIN_CHIPS + 3
        return int(math.ceil(chips * self.longest_period)) + 2

    def span_start(self, cand: SyncCandidate) -> int:
        """First absolute channel sample the decoder reads for a candidate."""
        chips = self.family.n_pattern * _RATE_MARGIN + _MARGIN_CHIPS
        return int(math.floor(cand.end_sample - chips * cand.period))

    def probe(self, z: npt.NDArray[np.complex64], cand: SyncCandidate) -> Probe | None:
        """Fit the header and read the frame start.

        Parameters
        ----------
        z : numpy.ndarray of complex64
            Channel samples from ``span_start(cand)`` to ``probe_need(cand)``.

        Returns
        -------
        Probe or None
            None when nothing here looks like a frame.
        """
        start = self.span_start(cand)
        fam = self.family
        head_stop = int(cand.end_sample + 2 * cand.period) - start
        fit = fit_header(
            z[:head_stop],
            start,
            self.known,
            cand.end_sample,
            cand.cfo_hz,
            cand.period,
            cand.deviation_hz,
            self.sample_rate_hz,
        )
        if fit.score < _MIN_SCORE:
            return None
        track = self._track(z, start, fit, fam.n_pattern + self.probe_chips)
        soft = self._soft_variants(z, start, fit, track)
        if soft is None:
            return None
        kept: list[tuple[Reading, int]] = []
        for data in soft[0]:
            for reading in self._order(data):
                n_chips = self._frame_chips(reading, data)
                if n_chips and (reading, n_chips) not in kept:
                    kept.append((reading, n_chips))
        if not kept:
            return None
        longest = max(len(r.marker) + n for r, n in kept)
        end = fit.end_time + (longest * _RATE_MARGIN + _MARGIN_CHIPS) * fit.period
        return Probe(fit, start, tuple(kept), int(math.ceil(end)))

    def _soft_variants(
        self, z, start: int, fit: HeaderFit, track: Track
    ) -> tuple[list[npt.NDArray[np.float64]], Track] | None:
        """Data chips (after the pattern) to try: coherent first, then square law;
        and the correlators over smoothed chip times the coherent chips came from.
        None when the track ended inside the pattern (no data chips).

        The coherent chips use correlators re-run over smoothed chip times: the
        loop's edge-by-edge corrections would otherwise jolt the phase from one chip
        to the next.
        """
        n_pat = self.family.n_pattern
        if track.soft.size <= n_pat:
            return None
        f_one, f_zero = self._tones(fit)
        smooth = correlate_chips(
            z,
            start,
            f_one,
            f_zero,
            smooth_times(track.times, track.period),
            track.period,
        )
        coherent = coherent_soft(
            smooth.y_one, smooth.y_zero, self.known, manchester=self.family.name == "S"
        )
        return [coherent[n_pat:], track.soft[n_pat:]], smooth

    def _order(self, data: npt.NDArray[np.float64]) -> list[Reading]:
        """Readings in the order to try: nearest C marker first when close."""
        hard = "".join("1" if s > 0 else "0" for s in data[:16])
        scored: list[tuple[float, Reading]] = []
        for reading in self.readings:
            if reading.marker:
                dist = sum(a != b for a, b in zip(hard, reading.marker, strict=False))
                if dist <= _MAX_MARKER_ERRORS:
                    scored.append((dist, reading))
            else:
                scored.append((_MAX_MARKER_ERRORS + 0.5, reading))
        return [r for _, r in sorted(scored, key=lambda item: item[0])]

    @staticmethod
    def _frame_chips(reading: Reading, data: npt.NDArray[np.float64]) -> int:
        """On-air chips of the frame under this reading, or 0 if it cannot be one."""
        per_byte = CHIPS_PER_BYTE[reading.line_code]
        body = data[len(reading.marker) :]
        if body.size < _FIRST_BLOCK_BYTES * per_byte:  # the span ended early
            return 0
        head, _ = decode_soft(body[:per_byte], reading.line_code)
        try:
            n_bytes = on_air_length(head[0], reading.frame_format)
        except ValueError:  # FrameError: L too small for the format
            return 0
        if reading.frame_format == "A":
            first, _ = decode_soft(
                body[: _FIRST_BLOCK_BYTES * per_byte], reading.line_code
            )
            # also for a frame reported with a bad CRC (emit_bad_crc): its first
            # block must check, or noise could pass for one (the header fit, tuned
            # over offsets, chip periods and deviations, makes some noise look clean)
            if not _first_block_crc_ok(first[:_FIRST_BLOCK_BYTES]):
                return 0
        return n_bytes * per_byte

    @staticmethod
    def _too_many_invalid(reading: Reading, n_invalid: int, n_bytes: int) -> bool:
        symbols = {"3of6": 2, "manchester": 8}.get(reading.line_code, 0) * n_bytes
        return symbols > 0 and n_invalid > _MAX_INVALID_SHARE * symbols

    # -- step 2 -----------------------------------------------------------------------
    def finish(
        self, z: npt.NDArray[np.complex64], cand: SyncCandidate, probe: Probe
    ) -> PacketResult | None:
        """Track the chips to the frame's end and check its CRCs.

        Parameters
        ----------
        z : numpy.ndarray of complex64
            Channel samples from ``probe.span_start`` to ``probe.need_sample``.

        Returns
        -------
        PacketResult or None
            The first reading (and soft decision) whose CRCs pass; else, with
            ``emit_bad_crc`` and a clean header, the first reading marked
            ``crc_ok=False``; else None.
        """
        fam, fit = self.family, probe.fit
        longest = max(len(r.marker) + n for r, n in probe.readings)
        track = self._track(z, probe.span_start, fit, fam.n_pattern + longest)
        fallback = None
        soft = self._soft_variants(z, probe.span_start, fit, track)
        if soft is None:
            return None
        variants, smooth = soft
        for data in variants:
            for reading, n_chips in probe.readings:
                lo = len(reading.marker)
                if data.size < lo + n_chips:
                    continue
                frame, n_invalid = decode_soft(
                    data[lo : lo + n_chips], reading.line_code
                )
                try:
                    strip_crcs(frame, reading.frame_format)
                    ok = True
                except ValueError:
                    ok = False
                end_rel = track.times[fam.n_pattern + lo + n_chips - 1] + track.period
                if (
                    ok
                    or fallback is None
                    and not self._too_many_invalid(reading, n_invalid, len(frame))
                ):
                    cfo_hz = self._offset(fit, smooth, data[: lo + n_chips])
                    result = self._result(
                        z, probe, reading, frame, ok, n_invalid, end_rel, cfo_hz
                    )
                    if ok:
                        return result
                    fallback = result
        plausible = fit.score >= _PLAUSIBLE_SCORE and cand.errors <= _PLAUSIBLE_ERRORS
        return fallback if (self.emit_bad_crc and plausible) else None

    def _offset(
        self, fit: HeaderFit, smooth: Track, data: npt.NDArray[np.float64]
    ) -> float:
        """Carrier offset, Hz, measured over the header and the decided chips."""
        chips = np.concatenate([self.known, (data > 0).astype(np.uint8)])
        n = min(chips.size, smooth.y_one.size)
        period = float(np.mean(np.diff(smooth.times))) if n > 2 else smooth.period
        cycles = measure_offset(
            smooth.y_one[:n],
            smooth.y_zero[:n],
            chips[:n],
            period,
            fit.cfo_hz / self.sample_rate_hz,
        )
        return cycles * self.sample_rate_hz

    def _result(
        self,
        z,
        probe: Probe,
        reading: Reading,
        frame: bytes,
        ok: bool,
        n_invalid: int,
        end_rel: float,
        cfo_hz: float,
    ) -> PacketResult:
        fit = probe.fit
        head_start = fit.end_time - self.family.n_pattern * fit.period
        lo = max(0, int(head_start) - probe.span_start)
        hi = min(z.size, int(math.ceil(end_rel)))
        power = (
            float(np.mean(np.abs(z[lo:hi].astype(np.complex128)) ** 2))
            if hi > lo
            else 0.0
        )
        # the sync word is the tail of the detection pattern (the C marker follows it)
        sync_time = fit.end_time - reading.sync_chips * fit.period
        return PacketResult(
            frame,
            reading,
            ok,
            n_invalid,
            sync_time,
            end_rel + probe.span_start,
            cfo_hz,
            power,
        )

    # -- chip tracking ----------------------------------------------------------------
    def _tones(self, fit: HeaderFit) -> tuple[float, float]:
        """Tones of chip 1 and chip 0, cycles per sample."""
        dev, rate = fit.deviation_hz, self.sample_rate_hz
        upper, lower = (fit.cfo_hz + dev) / rate, (fit.cfo_hz - dev) / rate
        return (upper, lower) if HIGH_FREQ_CHIP == 1 else (lower, upper)

    def _track(self, z, start: int, fit: HeaderFit, n_chips: int) -> Track:
        """Two passes of the chip clock: the first, with wide loop gains, follows a
        chip-rate error from the header on; a straight line through its chip times
        gives start and period for the second, whose narrow gains add little jitter.
        """
        f_one, f_zero = self._tones(fit)
        t0 = fit.end_time - self.family.n_pattern * fit.period - start
        first = track_chips(
            z,
            start,
            f_one,
            f_zero,
            t0,
            fit.period,
            self.known,
            n_chips,
            fit.chip_energy,
        )
        if first.times.size < 2 * self.family.n_pattern:
            return first
        slope, t_first = np.polyfit(np.arange(first.times.size), first.times, 1)
        if not 0.9 * fit.period < slope < 1.1 * fit.period:
            return first
        return track_chips(
            z,
            start,
            f_one,
            f_zero,
            t_first,
            slope,
            self.known,
            n_chips,
            fit.chip_energy,
            *_NARROW_GAINS,
        )


def _first_block_crc_ok(first: bytes) -> bool:
    """True when block 1 of a format-A frame (its first 12 bytes) has a good CRC.

    ``stack.frame.strip_crcs`` checks blocks in order and names the first bad one,
    so the rest of the frame is padded with zeros and only block 0 is asked about.
    """
    n_bytes = on_air_length(first[0], "A")
    try:
        strip_crcs(first + bytes(n_bytes - len(first)), "A")
    except ValueError as exc:  # CrcError (a DecodeError) carries the block index
        return getattr(exc, "block", 0) != 0
    return True
