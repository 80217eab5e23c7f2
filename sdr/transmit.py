"""From telegrams to a baseband ready to send or save: the transmit side's composition.

Each telegram (CRC-less form, as receivers print it) gets the CRCs of its frame format
(``stack.frame.add_crcs`` also sets L for that format), is modulated for its mode at its
own carrier relative to the chosen centre frequency, and placed after the previous one
with a gap.  Impairments for tests and demos are applied to the whole baseband:
sample-clock error (ppm), a common carrier offset (Hz), and white noise at an Eb/N0.

Signal picture::

    |lead| burst 1 |gap| burst 2 |gap| ... |tail|      complex64 at sample_rate_hz
            ^ each at carrier_hz(mode) + carrier_offset_hz - center_freq_hz

Eb/N0 definition: Eb is the energy per information bit of a 0 dB burst (unit power,
``Phy.bit_rate_bps`` of the first telegram's mode); N0 is the complex noise variance
divided by the sample rate.  A telegram with ``gain_db`` = g has Eb/N0 + g.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from dsp.impair import (
    add_awgn,
    add_dc_offset,
    apply_clock_offset,
    apply_iq_imbalance,
    shift_frequency,
)
from dsp.modes import get_phy
from dsp.modulator import Burst, compose, frame_burst
from sdr.annotation import Annotation
from stack.errors import WmbusError
from stack.frame import add_crcs

__all__ = ["TxFrame", "TransmitError", "render", "check_telegram_hex"]


# L is one byte and counts the bytes after it (no-CRC form, EN 13757-4): 1 + 255.
_MAX_TELEGRAM_BYTES = 256


class TransmitError(WmbusError, ValueError):
    """A telegram, mode or rate that cannot be transmitted as asked."""


@dataclass(frozen=True, slots=True)
class TxFrame:
    """One telegram to transmit.

    Attributes
    ----------
    telegram : bytes
        Link-layer bytes without CRCs, L counting the bytes after it.
    mode : str
        ``"S1"``, ``"S1-m"``, ``"S2"``, ``"T1"``, ``"T2"``, ``"C1"``, ``"C2"``.
    frame_format : {"A", "B"}
    direction : {"meter", "other"}
        meter->other, or other->meter (T2/S2/C2 downlink).
    carrier_offset_hz : float
        This transmitter's own frequency error, Hz.
    gain_db : float
        Power relative to the other telegrams, dB.
    chip_rate_error_ppm : float
        This meter's chip-clock error, ppm (a real meter's crystal is off by some).
    gap_s : float or None
        Silence before this telegram, s (None: the render's default gap); a negative
        gap starts it before the previous telegram ends, so the two overlap in time.
    """

    telegram: bytes
    mode: str
    frame_format: str = "A"
    direction: str = "meter"
    carrier_offset_hz: float = 0.0
    gain_db: float = 0.0
    chip_rate_error_ppm: float = 0.0
    gap_s: float | None = None


def check_telegram_hex(data: bytes) -> bytes:
    """Check a telegram is in the CRC-less form (L = bytes after it); return it.

    Raises
    ------
    TransmitError
        If L disagrees with the length, naming both.
    """
    if len(data) < 10:
        raise TransmitError(
            f"a telegram needs at least 10 bytes (L C M A), got {len(data)}"
        )
    if len(data) > _MAX_TELEGRAM_BYTES:
        raise TransmitError(
            f"a telegram holds at most {_MAX_TELEGRAM_BYTES} bytes without CRCs (L is "
            f"one byte, at most 255), got {len(data)}"
        )
    if data[0] != len(data) - 1:
        raise TransmitError(
            f"L-field {data[0]} but {len(data) - 1} bytes follow it: give the telegram "
            "without CRCs, with L counting the bytes after it (as receivers print it)"
        )
    return data


def _burst(frame: TxFrame, start: int, sample_rate_hz: float) -> Burst:
    try:
        on_air = add_crcs(check_telegram_hex(frame.telegram), frame.frame_format)
        return frame_burst(
            on_air,
            frame.mode,
            frame.direction,
            frame.frame_format,
            sample_rate_hz=sample_rate_hz,
            start_sample=start,
            carrier_offset_hz=frame.carrier_offset_hz,
            gain_db=frame.gain_db,
            chip_rate_error_ppm=frame.chip_rate_error_ppm,
        )
    except ValueError as exc:  # dsp refuses a mode/format/rate with a clear message,
        if isinstance(exc, TransmitError):  # stack.frame a telegram too long for B
            raise
        raise TransmitError(str(exc)) from None


def _annotation(burst: Burst, frame: TxFrame, center_freq_hz: float) -> Annotation:
    return Annotation.for_telegram(
        burst.start_sample,
        burst.stop_sample - 1,
        mode=frame.mode,
        frame_format=frame.frame_format,
        carrier_hz=burst.carrier_hz,
        telegram_hex=frame.telegram.hex(),
        frame_hex=burst.data.hex(),
        bandwidth_hz=2 * burst.half_band_hz,
        extra={"wmbus:direction": frame.direction, "wmbus:gain_db": frame.gain_db},
    )


def render(
    frames: Sequence[TxFrame],
    *,
    sample_rate_hz: float,
    center_freq_hz: float,
    gap_s: float = 0.01,
    lead_s: float = 0.005,
    tail_s: float = 0.005,
    ebn0_db: float | None = None,
    cfo_hz: float = 0.0,
    clock_ppm: float = 0.0,
    seed: int = 0,
    dc_offset: complex = 0j,
    iq_imbalance: tuple[float, float] = (0.0, 0.0),
) -> tuple[npt.NDArray[np.complex64], list[Annotation]]:
    """Build the baseband holding ``frames`` one after another, and their annotations.

    Parameters
    ----------
    frames : sequence of TxFrame
    sample_rate_hz, center_freq_hz : float
        Baseband rate and centre, Hz.
    gap_s, lead_s, tail_s : float
        Silence between telegrams, before the first and after the last, s.
    ebn0_db : float or None
        White noise at this Eb/N0 (module docstring); None for no noise.
    cfo_hz : float
        A frequency offset applied to everything (e.g. a receiver's tuning error), Hz.
    clock_ppm : float
        Sample-clock error, ppm (resamples the whole baseband).
    seed : int
        Seed of the noise.
    dc_offset : complex
        A receiver's DC offset added last (units of full scale, a 0 dB burst being 1).
    iq_imbalance : (float, float)
        A receiver's IQ gain (dB) and phase (degrees) imbalance, applied last.

    Returns
    -------
    iq : ndarray of complex64
    annotations : list of Annotation
        One per telegram, sample indices before the clock offset is applied.

    Raises
    ------
    TransmitError
        For a telegram, mode, format, rate or carrier that cannot be rendered.
    """
    if not frames:
        raise TransmitError("nothing to transmit")
    if sample_rate_hz <= 0:
        raise TransmitError(f"sample rate must be positive, not {sample_rate_hz}")
    bursts: list[Burst] = []
    position = int(round(lead_s * sample_rate_hz))
    for index, frame in enumerate(frames):
        if index:
            gap = gap_s if frame.gap_s is None else frame.gap_s
            position += int(round(gap * sample_rate_hz))
        burst = _burst(frame, position, sample_rate_hz)
        bursts.append(burst)
        position = burst.stop_sample
    # With overlapping telegrams (a negative gap) an earlier one may end last.
    end = max(burst.stop_sample for burst in bursts)
    n_samples = end + int(round(tail_s * sample_rate_hz))
    try:
        iq = compose(bursts, center_freq_hz, sample_rate_hz, n_samples)
    except ValueError as exc:
        raise TransmitError(str(exc)) from None
    # one burst per frame, built in the loop above
    annotations = [
        _annotation(b, f, center_freq_hz) for b, f in zip(bursts, frames, strict=True)
    ]
    if clock_ppm:
        iq = apply_clock_offset(iq, clock_ppm)
    if cfo_hz:
        iq = shift_frequency(iq, cfo_hz, sample_rate_hz)
    if ebn0_db is not None:
        bit_rate = get_phy(frames[0].mode, frames[0].direction).bit_rate_bps
        iq = add_awgn(
            iq,
            ebn0_db,
            bit_rate,
            sample_rate_hz,
            np.random.default_rng(seed),
            signal_power=1.0,
        )
    # receiver front-end errors act on signal and noise alike, so they come last
    if any(iq_imbalance):
        iq = apply_iq_imbalance(iq, *iq_imbalance)
    if dc_offset:
        iq = add_dc_offset(iq, dc_offset)
    return iq.astype(np.complex64, copy=False), annotations
