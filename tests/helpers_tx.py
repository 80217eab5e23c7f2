"""Test helper: made-up telegrams -> our modulator -> a noisy cu8 capture on disk.

Used by tests that hand our transmitter's output to a receiver (rtl_433, our own).
Nothing here is copied from a vector or a capture: every telegram is built from the
fields the caller passes, with ``stack.link`` and ``stack.frame``.

Capture layout (time runs left to right; modes may be mixed)::

    | gap | burst 1 | gap | burst 2 | gap | ... | burst n | gap |
    each burst at (its mode's carrier + its own offset) relative to center_freq_hz,
    scaled so every burst has the same energy per information bit, then complex
    AWGN over the whole sampled band (Eb/N0 as ``dsp.impair.add_awgn`` defines it),
    then scaled into cu8 without clipping the signal itself.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from dsp.convert import iq_to_bytes
from dsp.impair import add_awgn
from dsp.modes import get_phy
from dsp.modulator import compose, frame_burst
from sdr.filename import build_filename
from stack.frame import add_crcs
from stack.link import build_link_header

__all__ = [
    "MIN_TELEGRAM_LEN",
    "Capture",
    "TxSpec",
    "build_telegram",
    "modulate_telegrams",
    "write_cu8",
    "write_capture",
]

# L C M(2) A(6), CI 0x7A + short TPL header ACC STS CFG(2), one BCD volume record
# (DIF 0x0C VIF 0x13 + 4 bytes), one flow-temperature record (DIF 0x02 VIF 0x5A + 2
# bytes), DIF 0x0F: EN 13757-3 layouts, wmbus-reference.md sections 2.1, 3 and 4.
_HEADER_LEN = 10
_TPL_LEN = 5
_RECORDS_LEN = 6 + 4
_MANUFACTURER_DIF = 0x0F  # EN 13757-3: manufacturer-specific data up to the end
MIN_TELEGRAM_LEN = _HEADER_LEN + _TPL_LEN + _RECORDS_LEN + 1

# Share of cu8 full scale given to the rms of signal + noise: the constant-envelope
# signal stays inside full scale and noise peaks above 2.8 rms (per component) are
# rare, so almost nothing clips.
_CU8_RMS_SHARE = 0.35


def _bcd(value: int, n_bytes: int) -> bytes:
    """Little-endian packed BCD of a non-negative integer (EN 13757-3 type A)."""
    digits = f"{value:0{2 * n_bytes}d}"
    if len(digits) != 2 * n_bytes:
        raise ValueError(f"{value} does not fit {n_bytes} BCD bytes")
    pairs = [int(digits[i : i + 2], 16) for i in range(0, len(digits), 2)]
    return bytes(reversed(pairs))


def build_telegram(
    manufacturer: str,
    meter_id: str,
    length: int,
    *,
    version: int = 1,
    device_type: int = 0x07,
    c_field: int = 0x44,
    access_no: int = 0,
    volume_l: int = 0,
    flow_temp_dc: int = 0,
    seed: int = 0,
) -> bytes:
    """An unencrypted telegram in no-CRC form (``L == len - 1``), made up by the caller.

    Parameters
    ----------
    manufacturer : str
        Three letters A..Z (M-field).
    meter_id : str
        Eight hex digits, most significant first (A-field id).
    length : int
        Total bytes including L, at least ``MIN_TELEGRAM_LEN``; the part after the
        two records is DIF 0x0F and seeded manufacturer-specific bytes.
    version, device_type, c_field, access_no : int
        A-field version and device type, C-field, TPL access number.
    volume_l : int
        Volume in litres (record DIF 0x0C VIF 0x13: 8-digit BCD, 10^-3 m3).
    flow_temp_dc : int
        Flow temperature in units of 0.1 degC (record DIF 0x02 VIF 0x5A: int16).
    seed : int
        Seed of the manufacturer-specific filler bytes.

    Returns
    -------
    bytes
        ``length`` bytes: L C M A CI=0x7A ACC STS=0 CFG=0000 records 0x0F filler.

    Raises
    ------
    ValueError
        For a length outside ``MIN_TELEGRAM_LEN``..256 or a field out of range.
    """
    if not MIN_TELEGRAM_LEN <= length <= 256:
        raise ValueError(f"length must be {MIN_TELEGRAM_LEN}..256, got {length}")
    head = build_link_header(c_field, manufacturer, meter_id, version, device_type)
    # CFG 0x0000: no encryption, so a receiver can read the records.
    tpl = bytes((0x7A, access_no, 0x00, 0x00, 0x00))
    records = bytes((0x0C, 0x13)) + _bcd(volume_l, 4)
    temp = int(flow_temp_dc).to_bytes(2, "little", signed=True)
    records += bytes((0x02, 0x5A)) + temp
    n_filler = length - MIN_TELEGRAM_LEN
    filler = np.random.default_rng(seed).integers(0, 256, n_filler, dtype=np.uint8)
    tail = bytes((_MANUFACTURER_DIF,)) + filler.tobytes()
    body = bytearray(head + tpl + records + tail)
    body[0] = len(body) - 1
    return bytes(body)


@dataclass(frozen=True, slots=True)
class TxSpec:
    """One telegram to transmit.

    Attributes
    ----------
    telegram : bytes
        No-CRC form (``L == len - 1``), e.g. from ``build_telegram``.
    mode : str
        Meter -> other mode: "S1", "S1-m", "T1", "C1", ...
    frame_format : str
        "A" or "B" (B only in mode C).
    carrier_offset_hz : float
        Offset from the mode's nominal carrier, Hz (the meter's crystal error).
    on_air : bytes or None
        Bytes to send instead of ``add_crcs(telegram)``, e.g. a frame with a damaged
        CRC for a negative test; None sends the correct frame.
    """

    telegram: bytes
    mode: str
    frame_format: str = "A"
    carrier_offset_hz: float = 0.0
    on_air: bytes | None = None

    @property
    def frame(self) -> bytes:
        """The bytes sent on air: ``on_air`` if given, else CRCs inserted and L set."""
        if self.on_air is not None:
            return self.on_air
        return add_crcs(self.telegram, self.frame_format)


def modulate_telegrams(
    specs: Sequence[TxSpec],
    *,
    sample_rate_hz: float,
    center_freq_hz: float,
    gap_s: float = 0.005,
    invert: bool = False,
) -> tuple[npt.NDArray[np.complex64], list[tuple[int, int]]]:
    """Modulate telegrams one after another, each at its own carrier.

    Every burst gets the same energy per information bit: the fastest mode is sent
    at unit amplitude and a slower one ``10 log10(r_max / r)`` dB weaker, so one
    noise level gives every telegram the same Eb/N0.

    Parameters
    ----------
    specs : sequence of TxSpec
        What to send, in time order.
    sample_rate_hz, center_freq_hz : float
        Sample rate and tuning frequency of the capture, Hz.
    gap_s : float
        Silence before, between and after the bursts, s.
    invert : bool
        Swap the two FSK tones (to test a receiver's polarity).

    Returns
    -------
    iq : numpy.ndarray of complex64, shape (n_samples,)
        The bursts, zeros between them; the fastest mode has unit amplitude.
    spans : list of (int, int)
        First sample and one past the last sample of each burst.

    Raises
    ------
    ValueError
        As ``dsp.modulator.frame_burst`` and ``compose`` (a carrier outside the band,
        a sample rate too low for a mode, a frame format the mode does not allow).
    """
    top_bps = max(get_phy(s.mode).bit_rate_bps for s in specs)
    gap = int(round(gap_s * sample_rate_hz))
    bursts, start = [], gap
    for spec in specs:
        burst = frame_burst(
            spec.frame,
            spec.mode,
            "meter",
            spec.frame_format,
            sample_rate_hz=sample_rate_hz,
            start_sample=start,
            carrier_offset_hz=spec.carrier_offset_hz,
            invert=invert,
            gain_db=10.0 * math.log10(get_phy(spec.mode).bit_rate_bps / top_bps),
        )
        bursts.append(burst)
        start = burst.stop_sample + gap
    iq = compose(bursts, center_freq_hz, sample_rate_hz, n_samples=start)
    return iq, [(b.start_sample, b.stop_sample) for b in bursts]


def write_cu8(
    iq: npt.NDArray[np.complex64],
    directory: Path,
    stem: str,
    center_freq_hz: float,
    sample_rate_hz: float,
) -> Path:
    """Scale ``iq`` into cu8 and write it as ``STEM_<centre>M_<rate>k.cu8``.

    The rms of ``iq`` is mapped to ``_CU8_RMS_SHARE`` of full scale; the name alone
    tells rtl_433 (and ``sdr.filename``) the centre frequency, rate and format.
    """
    rms = math.sqrt(float(np.mean(np.abs(iq.astype(np.complex128)) ** 2)))
    scaled = (iq * (_CU8_RMS_SHARE / rms)).astype(np.complex64)
    path = Path(directory) / build_filename(stem, center_freq_hz, sample_rate_hz, "cu8")
    path.write_bytes(iq_to_bytes(scaled, "cu8"))
    return path


@dataclass(frozen=True, slots=True)
class Capture:
    """A capture file written by ``write_capture`` and what it holds.

    Attributes
    ----------
    path : Path
        The cu8 file (rtl_433-style name).
    specs : tuple of TxSpec
        The telegrams sent, in time order.
    spans : tuple of (int, int)
        First sample and one past the last sample of each burst.
    """

    path: Path
    specs: tuple[TxSpec, ...]
    spans: tuple[tuple[int, int], ...]


def write_capture(
    directory: Path,
    specs: Sequence[TxSpec],
    *,
    sample_rate_hz: float,
    center_freq_hz: float,
    ebn0_db: float,
    seed: int,
    invert: bool = False,
    stem: str = "tx",
) -> Capture:
    """Modulate ``specs``, add seeded AWGN at ``ebn0_db`` and write a cu8 file.

    Parameters
    ----------
    directory : Path
        Where to write (e.g. pytest's ``tmp_path``).
    specs : sequence of TxSpec
        What to send, in time order.
    sample_rate_hz, center_freq_hz : float
        Capture sample rate and tuning frequency, Hz.
    ebn0_db : float
        Eb/N0 per information bit of every telegram, dB, with the noise white over
        the whole sampled band (``dsp.impair.add_awgn``).
    seed : int
        Seed of the noise.
    invert : bool
        Swap the FSK tones.
    stem : str
        Start of the file name.

    Returns
    -------
    Capture
    """
    iq, spans = modulate_telegrams(
        specs,
        sample_rate_hz=sample_rate_hz,
        center_freq_hz=center_freq_hz,
        invert=invert,
    )
    # The fastest mode is at unit amplitude (modulate_telegrams), so its bit rate
    # fixes the noise that gives every burst ebn0_db.
    top_bps = max(get_phy(s.mode).bit_rate_bps for s in specs)
    noisy = add_awgn(
        iq,
        ebn0_db,
        top_bps,
        sample_rate_hz,
        np.random.default_rng(seed),
        signal_power=1.0,
    )
    path = write_cu8(noisy, directory, stem, center_freq_hz, sample_rate_hz)
    return Capture(path, tuple(specs), tuple(spans))
