"""What a capture's file name says: format by extension, centre and rate from the name.

rtl_433 names the IQ files it writes ``NAME_<centre>M_<rate>k.<format>``, for example
``g001_868.95M_2400k.cu8``, and reads the centre frequency and sample rate back from
such names.  Other tools write the same facts differently (``868950000Hz``,
``2.4M``, rtl-wmbus's ``1M6`` for 1.6 MS/s, ``2400ksps``); all of these are understood.

Reading a name: the stem is split at ``_``, ``-`` and blanks; each token that reads
as a frequency (``sdr.units.parse_frequency``, plus an optional ``sps``) is a
candidate, except plain digit strings (dates, counters), which carry no unit.
``sps`` marks a rate.  Otherwise a value of at least 100 MHz is a centre frequency
and a smaller one a sample rate (SDR sample rates stay far below 100 MS/s, wM-Bus
lives at 868-870 MHz); if that finds no centre but two smaller values, the larger
of them is the centre.

One name is read whole instead: gqrx names its recordings
``gqrx_<yyyymmdd>_<hhmmss>_<centre>_<rate>_fc.raw`` (for example
``gqrx_20261124_143012_868950000_2400000_fc.raw``): complex float32 (cf32), with the
centre in Hz and the rate in samples per second as plain numbers.
The WAV recorders (SDR++ ``baseband_868950000Hz_14-30-12_24-11-2026.wav``, SDR#
``..._868950000Hz_IQ.wav``, HDSDR ``..._868950kHz_RF.wav``) write the centre with a
unit, which the token rule reads; the WAV header holds the rate and the format.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from dsp.convert import SAMPLE_FORMATS
from sdr.units import format_frequency, parse_frequency

__all__ = [
    "FILE_FORMATS",
    "WRITTEN_FORMATS",
    "NameInfo",
    "build_filename",
    "file_format_from_path",
    "parse_filename",
]

#: Every ``--format`` value: the raw IQ formats, SigMF (metadata + data pair) and WAV.
FILE_FORMATS: tuple[str, ...] = (*SAMPLE_FORMATS, "sigmf", "wav")
#: The formats we write (file sinks, names built for them): WAV is only read.
WRITTEN_FORMATS: tuple[str, ...] = (*SAMPLE_FORMATS, "sigmf")

# Extensions as rtl_433 (cu8, cs8, cs16, cf32, complex16u/s) and GNU Radio (cfile)
# write them; .raw, .bin and .iq say nothing about the format and need --format.
_EXTENSION_FORMATS = {
    ".cu8": "cu8",
    ".complex16u": "cu8",
    ".cs8": "cs8",
    ".cs16": "cs16",
    ".complex16s": "cs16",
    ".cf32": "cf32",
    ".cfile": "cf32",
    ".sigmf-meta": "sigmf",
    ".sigmf-data": "sigmf",
    ".wav": "wav",
}
# gqrx's raw recordings (gqrx's own CIqTool reads centre and rate back from them).
_GQRX_RE = re.compile(r"gqrx_\d{8}_\d{6}_(\d+)_(\d+)_fc\.raw", re.IGNORECASE)
_GQRX_FORMAT = "cf32"

# At or above this a value in a file name is a centre frequency, below it a rate.
_CENTRE_MIN_HZ = 100e6

_TOKEN_SPLIT_RE = re.compile(r"[_\s-]+")
_PLAIN_NUMBER_RE = re.compile(r"[\d.]*")
_SPS_RE = re.compile(r"sps$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NameInfo:
    """Facts read from a file name; ``None`` where the name does not say.

    Attributes
    ----------
    file_format : str or None
        One of ``FILE_FORMATS``, from the extension.
    center_freq_hz : float or None
        Centre frequency in Hz.
    sample_rate_hz : float or None
        Sample rate in samples per second.
    """

    file_format: str | None
    center_freq_hz: float | None
    sample_rate_hz: float | None


def file_format_from_path(path: str | Path) -> str | None:
    """Format implied by the file's extension (case-insensitive), or ``None``.

    Parameters
    ----------
    path : str or Path
        File name or path.

    Returns
    -------
    str or None
        One of ``FILE_FORMATS``, or ``None`` for an extension that says nothing
        (a gqrx ``..._fc.raw`` name says cf32).
    """
    name = Path(path).name
    if _GQRX_RE.fullmatch(name):
        return _GQRX_FORMAT
    return _EXTENSION_FORMATS.get(Path(name).suffix.lower())


def _frequency_tokens(stem: str) -> tuple[list[float], list[float]]:
    """Split a file stem into (explicit rates, other unit-bearing values) in Hz."""
    rates: list[float] = []
    others: list[float] = []
    for token in _TOKEN_SPLIT_RE.split(stem):
        if _PLAIN_NUMBER_RE.fullmatch(token):
            continue  # no unit: a date, a counter, not a frequency
        is_rate = bool(_SPS_RE.search(token))
        try:
            value = parse_frequency(_SPS_RE.sub("", token))
        except ValueError:
            continue
        if value > 0:
            (rates if is_rate else others).append(value)
    return rates, others


def parse_filename(path: str | Path) -> NameInfo:
    """Read format, centre frequency and sample rate from a capture's file name.

    Parameters
    ----------
    path : str or Path
        For example ``"rtlsdr_868.950M_1M6_samples2.cu8"`` or
        ``"meter_868950000Hz_2.4M.cs16"``.

    Returns
    -------
    NameInfo
        What the name says; fields it does not say are ``None``.

    Examples
    --------
    >>> parse_filename("g001_868.95M_2400k.cu8")
    NameInfo(file_format='cu8', center_freq_hz=868950000.0, sample_rate_hz=2400000.0)
    """
    name = Path(path).name
    gqrx = _GQRX_RE.fullmatch(name)
    if gqrx:
        centre_hz, rate_hz = (float(text) for text in gqrx.groups())
        return NameInfo(_GQRX_FORMAT, centre_hz or None, rate_hz or None)
    suffix = Path(name).suffix
    # ".raw" is an extension, but in "x_2.4M" the ".4M" is part of the rate.
    has_extension = len(suffix) > 1 and suffix[1].isalpha()
    stem = name[: -len(suffix)] if has_extension else name
    rates, others = _frequency_tokens(stem)
    centres = [v for v in others if v >= _CENTRE_MIN_HZ]
    rates += [v for v in others if v < _CENTRE_MIN_HZ]
    if not centres and len(rates) >= 2:
        # e.g. a 27M centre with a 2M rate: the larger value is the centre.
        centres = [max(rates[:2])]
        rates = [min(rates[:2])]
    return NameInfo(
        file_format=file_format_from_path(name),
        center_freq_hz=centres[0] if centres else None,
        sample_rate_hz=rates[0] if rates else None,
    )


def build_filename(
    stem: str, center_freq_hz: float, sample_rate_hz: float, file_format: str
) -> str:
    """Build an rtl_433-style capture name: ``STEM_868.95M_2400k.cu8``.

    Parameters
    ----------
    stem : str
        Leading part of the name (may be empty).
    center_freq_hz : float
        Centre frequency in Hz, written in MHz exactly to the Hz.
    sample_rate_hz : float
        Sample rate in samples per second, written in k exactly to the sample.
    file_format : str
        A format we write: ``FILE_FORMATS`` but ``wav``; ``"sigmf"`` gives the
        ``.sigmf-meta`` name.

    Returns
    -------
    str
        The file name (no directory); ``parse_filename`` reads the same values back.

    Raises
    ------
    ValueError
        If ``file_format`` is unknown or a frequency is not positive.
    """
    if file_format not in WRITTEN_FORMATS:
        valid = ", ".join(WRITTEN_FORMATS)
        raise ValueError(f"unknown file format {file_format!r}; valid: {valid}")
    if not (center_freq_hz > 0 and sample_rate_hz > 0):
        raise ValueError("centre frequency and sample rate must be positive")
    extension = "sigmf-meta" if file_format == "sigmf" else file_format
    parts = [
        stem,
        format_frequency(center_freq_hz, "M"),
        format_frequency(sample_rate_hz, "k"),
    ]
    return "_".join(p for p in parts if p) + "." + extension
