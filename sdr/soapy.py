"""What both SoapySDR ends share: finding the binding, device strings, constants.

Finding SoapySDR: its Python binding is not on PyPI; Debian's ``python3-soapysdr``
installs ``SoapySDR.py`` and ``_SoapySDR*.so`` into /usr/lib/python3/dist-packages,
which a virtual environment does not see (ours is built on a pyenv interpreter, so
``--system-site-packages`` would not even reach that directory).  ``import_soapysdr``
first tries a plain import, then appends the Debian directory to ``sys.path`` for that
one import only and removes it again, so no other Debian package (an older numpy)
can shadow the venv's.  The binding is compiled for the system's Python minor
version; another version gets a clear error.  The import happens when a device is
opened, never when this module is imported.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from stack.errors import WmbusError

__all__ = [
    "SOAPY_ERRORS",
    "SOAPY_SDR_CF32",
    "SOAPY_SDR_END_BURST",
    "SOAPY_SDR_HAS_TIME",
    "SOAPY_SDR_OVERFLOW",
    "SOAPY_SDR_RX",
    "SOAPY_SDR_TIMEOUT",
    "SOAPY_SDR_TX",
    "SOAPY_SDR_UNDERFLOW",
    "SYSTEM_SITE_DIRS",
    "describe_ranges",
    "error_name",
    "import_soapysdr",
    "in_ranges",
    "parse_device_args",
]

#: Where distribution packages put the SoapySDR binding (Debian first).
SYSTEM_SITE_DIRS: tuple[str, ...] = (
    "/usr/lib/python3/dist-packages",
    "/usr/local/lib/python3/dist-packages",
    f"/usr/local/lib/python3.{sys.version_info.minor}/site-packages",
    f"/usr/local/lib/python3.{sys.version_info.minor}/dist-packages",
)

# SoapySDR's C API constants (SoapySDR/Constants.h, Errors.h, Formats.h); fixed by its
# ABI, so a fake device needs no SoapySDR installed.  tests/sdr/test_soapy.py and
# test_source_soapy.py hold them equal to the installed binding's.
SOAPY_SDR_TX = 0
SOAPY_SDR_RX = 1
SOAPY_SDR_END_BURST = 1 << 1
SOAPY_SDR_HAS_TIME = 1 << 2
SOAPY_SDR_CF32 = "CF32"
SOAPY_SDR_TIMEOUT = -1
SOAPY_SDR_OVERFLOW = -4
SOAPY_SDR_UNDERFLOW = -7
#: Error codes of readStream/writeStream (SoapySDR/Errors.h), as errToStr names them.
SOAPY_ERRORS = {
    -1: "timeout",
    -2: "stream error",
    -3: "corruption",
    -4: "overflow",
    -5: "not supported",
    -6: "time error",
    -7: "underflow",
}


def import_soapysdr() -> ModuleType:
    """Import the SoapySDR Python binding, also from the system's site directories.

    Returns
    -------
    module
        The ``SoapySDR`` module.

    Raises
    ------
    ModuleNotFoundError
        Not installed (``name == "SoapySDR"``), or installed for another Python
        version (the message says which directory held it).
    """
    try:
        return importlib.import_module("SoapySDR")
    except ModuleNotFoundError as exc:
        if exc.name not in ("SoapySDR", "_SoapySDR"):
            raise
    for directory in SYSTEM_SITE_DIRS:
        if not (Path(directory) / "SoapySDR.py").is_file():
            continue
        sys.path.append(directory)
        try:
            return importlib.import_module("SoapySDR")
        except ModuleNotFoundError as exc:
            if exc.name != "_SoapySDR":
                raise
            raise ModuleNotFoundError(
                f"SoapySDR in {directory} has no compiled part for Python "
                f"{sys.version_info.major}.{sys.version_info.minor}; use the system's "
                "Python version for the venv",
                name="SoapySDR",
            ) from exc
        finally:
            sys.path.remove(directory)
    raise ModuleNotFoundError("No module named 'SoapySDR'", name="SoapySDR")


def parse_device_args(
    text: str, error: type[WmbusError], *, allow_empty: bool = False
) -> dict[str, str]:
    """Parse SoapySDR device arguments ``"driver=hackrf,serial=..."`` into a dict.

    Parameters
    ----------
    text : str
        The arguments as typed.
    error : type of WmbusError
        ``SinkError`` or ``SourceError``: what a bad string raises.
    allow_empty : bool
        Accept an empty string (an empty dict: SoapySDR's first device).

    Raises
    ------
    error
        Empty (unless allowed), or an item without ``key=``.
    """
    if not text.strip():
        if allow_empty:
            return {}
        raise error(
            "soapy: say which device, e.g. soapy:driver=hackrf "
            "(SoapySDRUtil --find lists them)"
        )
    args: dict[str, str] = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise error(
                f"soapy: bad device string {text!r}: expected key=value[,key=value...]"
                ", e.g. driver=hackrf"
            )
        args[key.strip()] = value.strip()
    return args


def in_ranges(value: float, ranges: Any) -> bool:
    """Whether ``value`` lies in one of SoapySDR ``Range`` objects (none: no limit)."""
    ranges = list(ranges)
    return not ranges or any(r.minimum() <= value <= r.maximum() for r in ranges)


def describe_ranges(ranges: Any, scale: float, unit: str) -> str:
    """``"1-6000 MHz, ..."``: SoapySDR ranges divided by ``scale``, with ``unit``."""
    return ", ".join(
        f"{r.minimum() / scale:g}-{r.maximum() / scale:g} {unit}" for r in ranges
    )


# Largest relative difference between the sample rate asked for and the one set.
MAX_RATE_ERROR = 1e-4


def set_sample_rate(
    device: Any,
    direction: int,
    channel: int,
    rate_hz: float,
    name: str,
    error: type[WmbusError],
) -> None:
    """Set a supported sample rate and check the device really set it.

    Raises ``error`` (SourceError or SinkError) naming what the device offers, or the
    rate it chose instead, with ``name`` in front.
    """
    ranges = device.getSampleRateRange(direction, channel)
    if not in_ranges(rate_hz, ranges):
        raise error(
            f"{name}: sample rate {rate_hz / 1e6:g} MS/s not supported; it "
            f"offers {describe_ranges(ranges, 1e6, 'MS/s')}"
        )
    device.setSampleRate(direction, channel, rate_hz)
    actual_hz = float(device.getSampleRate(direction, channel))
    if abs(actual_hz - rate_hz) > MAX_RATE_ERROR * rate_hz:
        raise error(
            f"{name}: asked for {rate_hz:.0f} S/s, the device set "
            f"{actual_hz:.0f} S/s; choose a rate it supports exactly"
        )


def set_frequency(
    device: Any,
    direction: int,
    channel: int,
    freq_hz: float,
    name: str,
    error: type[WmbusError],
) -> None:
    """Tune to ``freq_hz``; raise ``error`` for a frequency the device cannot reach."""
    ranges = device.getFrequencyRange(direction, channel)
    if not in_ranges(freq_hz, ranges):
        raise error(
            f"{name}: cannot tune to {freq_hz / 1e6:g} MHz; it covers "
            f"{describe_ranges(ranges, 1e6, 'MHz')}"
        )
    device.setFrequency(direction, channel, freq_hz)


def open_device(args: dict[str, str], error: type[WmbusError]) -> Any:
    """Open a SoapySDR device; a missing Python binding becomes ``error`` saying how
    to install it."""
    try:
        soapy = import_soapysdr()
    except ModuleNotFoundError as exc:
        raise error(
            f"soapy: the SoapySDR Python binding is not available ({exc}); install it "
            "with: apt install python3-soapysdr (see README: SoapySDR)"
        ) from exc
    return soapy.Device(args)


def error_name(code: int) -> str:
    """``"overflow (-4)"``: a SoapySDR error code with its name."""
    return f"{SOAPY_ERRORS.get(code, 'error')} ({code})"
