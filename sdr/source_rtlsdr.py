"""An RTL-SDR dongle in this process, through pyrtlsdr (``rtlsdr[:INDEX|:SERIAL]``).

pyrtlsdr wraps librtlsdr with ctypes; pyrtlsdrlib ships a librtlsdr build it loads
first (both are the ``rtlsdr`` extra: ``pip install 'wmbus-sdr[rtlsdr]'``).  They are
imported when a dongle is opened, never when this module is imported.

Which dongle: ``rtlsdr`` or ``rtlsdr:0`` is the first, ``rtlsdr:2`` the third (a
decimal number without leading zeros is an index), anything else is a serial number
(``rtlsdr:00000001``, ``rtlsdr:serial=0001`` to be explicit), as ``rtl_eeprom -s``
writes it.

Opening::

    list the dongles (none: "no RTL-SDR found") -> pick by index or serial ->
    open (busy: the DVB driver or another program holds it) -> sample rate ->
    frequency (checked against the tuner's range) -> ppm -> gain ('auto' or the
    nearest of the tuner's steps) -> AGC -> bias tee -> read on a thread

Reading: ``rtlsdr_read_async`` runs on the reader thread of ``LiveSource`` and hands
over USB buffers through a callback that only copies them into the bounded queue, so
decoding never stalls USB; a full queue drops the buffer and counts it.  librtlsdr
itself reports no USB overflow: samples lost inside the dongle or libusb cannot be
counted.  When ``read_async`` returns without being cancelled the dongle has gone
(unplugged): ``SourceError``, or a reopen with ``reconnect=True``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from types import ModuleType
from typing import Any

from sdr.rtl2832 import (
    TUNER_NAMES,
    check_frequency,
    check_sample_rate,
    nearest_gain_tenth_db,
    tuner_info,
)
from sdr.source_live import (
    DEFAULT_CENTER_FREQ_HZ,
    DEFAULT_SAMPLE_RATE_HZ,
    LiveSource,
    parse_gain,
)
from sdr.units import format_frequency
from stack.errors import SourceError

__all__ = ["RtlSdrSource", "import_pyrtlsdr", "parse_rtlsdr_device"]

log = logging.getLogger(__name__)

_INSTALL = "pip install 'wmbus-sdr[rtlsdr]'"
# USB buffer handed to each callback, bytes: 256 KiB (librtlsdr's default is 16 * 32 *
# 512 = 256 KiB as well): 55 ms at 2.4 MS/s.
_BUFFER_BYTES = 1 << 18
# libusb error codes (libusb.h) librtlsdr passes on, with what they mean for a dongle.
_LIBUSB_HINTS = {
    -3: "permission denied: install the rtl-sdr udev rules or run with access to "
    "the USB device",
    -4: "the dongle has gone (unplugged?)",
    -6: "the dongle is busy: another program or the DVB kernel driver "
    "(dvb_usb_rtl28xxu; blacklist it) holds it",
}
_INDEX_RE = re.compile(r"0|[1-9][0-9]*")


def import_pyrtlsdr() -> ModuleType:
    """Import pyrtlsdr's ``rtlsdr`` package.

    Raises
    ------
    SourceError
        pyrtlsdr is not installed, or it cannot load a librtlsdr; the message
        names the install command.
    """
    try:
        import rtlsdr
    except ModuleNotFoundError as exc:
        raise SourceError(
            f"rtlsdr: the Python package pyrtlsdr is not installed ({exc}); install "
            f"it with: {_INSTALL}"
        ) from exc
    except ImportError as exc:  # pyrtlsdr found, librtlsdr not
        raise SourceError(
            f"rtlsdr: pyrtlsdr cannot load librtlsdr ({exc}); install it with: "
            f"{_INSTALL} (pyrtlsdrlib ships the library)"
        ) from exc
    if getattr(rtlsdr, "RtlSdr", None) is None:
        raise SourceError(
            "rtlsdr: pyrtlsdr runs in client-only mode (RTLSDR_CLIENT_MODE is set); "
            "unset it to use a local dongle"
        )
    return rtlsdr


def parse_rtlsdr_device(text: str) -> int | str:
    """``""``, ``"0"``, ``"2"``: an index; ``"serial=X"`` or anything else: a serial."""
    text = text.strip()
    if not text:
        return 0
    if text.startswith("serial="):
        serial = text[len("serial=") :]
        if not serial:
            raise SourceError("rtlsdr:serial= needs a serial number")
        return serial
    return int(text) if _INDEX_RE.fullmatch(text) else text


def _libusb_text(exc: OSError) -> str:
    code = getattr(exc, "errno", None)
    hint = _LIBUSB_HINTS.get(code) if isinstance(code, int) else None
    return hint or " ".join(str(exc).split())


class RtlSdrSource(LiveSource):
    """Samples from an RTL-SDR dongle through pyrtlsdr.

    Parameters
    ----------
    device : int or str
        Device index, or serial number (see module docstring).
    center_freq_hz : float
        Frequency to tune to, Hz.
    sample_rate_hz : float
        Sample rate, S/s: 225001-300000 or 900001-3200000.
    gain_db : float, 'auto' or None
        Tuner gain in dB (the nearest step the tuner has) or 'auto' (tuner AGC);
        None: pyrtlsdr's default, auto.
    ppm : int or None
        Frequency correction of the dongle's crystal, ppm.
    agc : bool or None
        RTL2832 digital AGC; None leaves it off.
    bias_tee : bool or None
        Power the antenna input (RTL-SDR Blog v3 and later); None leaves it off.
    **live_options
        ``timeout_s``, ``reconnect``, ``max_reconnects``, ``queue_blocks``,
        ``chunk_samples``, ``clock`` (see ``LiveSource``).

    Attributes
    ----------
    device_index : int
        The index opened.
    serial : str
        Its serial number.
    tuner_name : str
        Its tuner chip.
    gain_tenth_db : int or None
        The manual gain set, tenths of dB (None: auto).

    Raises
    ------
    SourceError
        pyrtlsdr or librtlsdr missing, no dongle, no such index or serial, a busy
        dongle, no permission, an invalid rate, frequency or gain.
    """

    def __init__(
        self,
        device: int | str = 0,
        *,
        center_freq_hz: float = DEFAULT_CENTER_FREQ_HZ,
        sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
        gain_db: float | str | None = None,
        ppm: int | None = None,
        agc: bool | None = None,
        bias_tee: bool | None = None,
        **live_options: Any,
    ):
        name = f"rtlsdr:{device}"
        rate = check_sample_rate(sample_rate_hz, name)
        check_frequency(center_freq_hz, None, name)
        super().__init__(
            sample_rate_hz=rate,
            center_freq_hz=center_freq_hz,
            name=name,
            sample_format="cu8",
            **live_options,
        )
        self.device = device
        self.gain_db = parse_gain(gain_db, name)
        self.ppm = None if ppm is None else int(ppm)
        self.agc, self.bias_tee = agc, bias_tee
        self.device_index, self.serial, self.tuner_name = -1, "", "unknown"
        self.gain_tenth_db: int | None = None
        self._rtlsdr = import_pyrtlsdr()
        self._sdr: Any = None
        self._start()

    @classmethod
    def from_spec(cls, arg: str, **options: Any) -> RtlSdrSource:
        """Open ``rtlsdr[:INDEX|:SERIAL]`` (see the class parameters for options)."""
        return cls(parse_rtlsdr_device(arg), **options)

    # --- opening ----------------------------------------------------------------------

    def _connect(self) -> None:
        self.device_index, self.serial = self._find_device()
        try:
            self._sdr = self._rtlsdr.RtlSdr(device_index=self.device_index)
        except OSError as exc:
            raise SourceError(f"{self.name}: cannot open: {_libusb_text(exc)}") from exc
        try:
            self._configure()
        except OSError as exc:
            raise SourceError(f"{self.name}: {_libusb_text(exc)}") from exc
        log.info(
            "%s: serial %s, tuner %s, %s S/s at %sHz, gain %s dB",
            self.name,
            self.serial,
            self.tuner_name,
            format_frequency(self.sample_rate_hz, "k"),
            format_frequency(self.center_freq_hz),
            "auto" if self.gain_tenth_db is None else self.gain_tenth_db / 10,
        )

    def _find_device(self) -> tuple[int, str]:
        """(index, serial) of the dongle asked for, or a SourceError listing them."""
        try:
            serials = list(self._rtlsdr.RtlSdr.get_device_serial_addresses())
        except OSError as exc:
            raise SourceError(f"{self.name}: cannot list dongles: {exc}") from exc
        if not serials:
            raise SourceError(
                f"{self.name}: no RTL-SDR found (is it plugged in? rtl_test lists "
                "dongles)"
            )
        found = ", ".join(f"{i}: serial {s}" for i, s in enumerate(serials))
        if isinstance(self.device, int):
            if self.device >= len(serials):
                raise SourceError(
                    f"{self.name}: no dongle {self.device}; found {found}"
                )
            return self.device, serials[self.device]
        if self.device not in serials:
            raise SourceError(
                f"{self.name}: no dongle with serial {self.device!r}; found {found}"
            )
        return serials.index(self.device), self.device

    def _configure(self) -> None:
        sdr = self._sdr
        tuner = tuner_info(sdr.get_tuner_type())
        self.tuner_name = TUNER_NAMES.get(sdr.get_tuner_type(), "unknown")
        freq = check_frequency(self.center_freq_hz, tuner, self.name)
        sdr.sample_rate = round(self.sample_rate_hz)
        sdr.center_freq = freq
        if self.ppm:  # librtlsdr refuses to "change" the correction to its value, 0
            sdr.freq_correction = self.ppm
        if self.gain_db == "auto":
            sdr.gain = "auto"
        elif self.gain_db is not None:
            steps = list(sdr.gain_values)
            self.gain_tenth_db = nearest_gain_tenth_db(
                float(self.gain_db), steps, self.name
            )
            sdr.gain = self.gain_tenth_db / 10
        if self.agc is not None:
            sdr.set_agc_mode(bool(self.agc))
        if self.bias_tee is not None:
            sdr.set_bias_tee(bool(self.bias_tee))

    # --- streaming --------------------------------------------------------------------

    def _stream(self, emit: Callable[[bytes | bytearray | memoryview], None]) -> None:
        sdr = self._sdr

        def on_buffer(values: Any, _context: Any) -> None:
            if not self._streaming():
                # Cancelling from the callback cannot miss a read that is starting.
                self._cancel(sdr)
                return
            emit(memoryview(values).cast("B"))

        try:
            sdr.read_bytes_async(on_buffer, _BUFFER_BYTES)
        except OSError as exc:
            if not self._streaming():
                return
            raise SourceError(
                f"{self.name}: reading failed: {_libusb_text(exc)}"
            ) from exc
        if self._streaming():
            raise SourceError(
                f"{self.name}: the dongle stopped delivering samples (unplugged?)"
            )

    def _interrupt(self) -> None:
        sdr = self._sdr
        if sdr is not None and getattr(sdr, "device_opened", False):
            self._cancel(sdr)

    def _cancel(self, sdr: Any) -> None:
        """Ask librtlsdr to end ``read_async``; a read not running yet is no error.

        The library call is used directly: pyrtlsdr's ``cancel_read_async`` closes
        the device when there is nothing to cancel, under the reader's feet.
        """
        self._rtlsdr.librtlsdr.rtlsdr_cancel_async(sdr.dev_p)

    def _disconnect(self) -> None:
        sdr, self._sdr = self._sdr, None
        if sdr is not None:
            try:
                sdr.close()
            except OSError as exc:
                log.warning("%s: closing: %s", self.name, exc)
