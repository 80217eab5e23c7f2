"""Receive through SoapySDR: any device with an RX channel (``soapy:ARGS``).

Airspy, HackRF, LimeSDR, SDRplay, PlutoSDR, USRP or an RTL-SDR, through Debian's
``python3-soapysdr`` (found by ``sdr.soapy.import_soapysdr`` when a device is opened).
``soapy:`` with no arguments takes SoapySDR's first device.

Opening, each step checked against what the device reports (a ``SourceError`` names
what it offers instead)::

    device args -> open -> an RX channel -> antenna -> sample rate (the rate set must
    be the rate asked) -> frequency -> ppm correction -> gain ('auto': its AGC) ->
    bias tee (the driver's "biastee" setting) -> stream format -> activate -> thread

Stream format: the device's native one when the binding reports it with its full
scale and it is one of ours (CU8, CS8, CS16, CF32), converted by ``dsp.convert`` and
rescaled so that the device's full scale is 1.0; otherwise CF32, which SoapySDR's
driver converts and scales itself.  (Debian 12's binding cannot return the full scale,
so CF32 it is there.)

Dropped samples: ``readStream`` returning ``SOAPY_SDR_OVERFLOW`` is one drop event;
when the stream carries hardware time (``SOAPY_SDR_HAS_TIME``) the next block's time
stamp tells how many samples the overflow cost, and they are counted too.  A full
queue on our side is counted as in every ``LiveSource``.  A timeout of the driver is
silence, judged by ``timeout_s``; any other error code ends the stream (or
reconnects).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from sdr.soapy import (
    SOAPY_SDR_CF32,
    SOAPY_SDR_HAS_TIME,
    SOAPY_SDR_OVERFLOW,
    SOAPY_SDR_RX,
    SOAPY_SDR_TIMEOUT,
    error_name,
    in_ranges,
    open_device,
    parse_device_args,
    set_frequency,
    set_sample_rate,
)
from sdr.source_live import (
    DEFAULT_CENTER_FREQ_HZ,
    DEFAULT_SAMPLE_RATE_HZ,
    LiveSource,
    parse_gain,
)
from stack.errors import SourceError

__all__ = ["SoapySource"]

log = logging.getLogger(__name__)

# SoapySDR format -> (our format, numpy dtype of one component, nominal full scale).
_FORMATS = {
    "CU8": ("cu8", np.uint8, 127.5),
    "CS8": ("cs8", np.int8, 128.0),
    "CS16": ("cs16", np.int16, 32768.0),
    "CF32": ("cf32", np.float32, 1.0),
}
# Timeout of one readStream call, us (SoapySDR's default).
_READ_TIMEOUT_US = 100_000
# Pause after a driver's timeout, s: some return at once, and must not spin a core.
_IDLE_S = 0.005
# Samples per readStream when the device reports no MTU.
_DEFAULT_MTU = 1 << 16


def _open_real_device(args: dict[str, str]) -> Any:
    return open_device(args, SourceError)


class SoapySource(LiveSource):
    """Samples from a SoapySDR device.

    Parameters
    ----------
    device_args : str
        SoapySDR device arguments, ``"driver=airspy"``, ``"driver=rtlsdr,serial=..."``
        (empty: the first device).
    center_freq_hz, sample_rate_hz : float
        RF frequency (Hz) and sample rate (S/s).
    gain_db : float, 'auto' or None
        Overall RX gain in dB; 'auto' for the device's AGC; None leaves it.
    ppm : float or None
        Frequency correction, ppm (if the device offers it).
    bias_tee : bool or None
        Antenna power through the driver's ``biastee`` setting.
    channel : int
        RX channel index.
    antenna : str or None
        RX antenna (one of ``listAntennas``); None: the device's default.
    device_factory : callable or None
        Opens a device from a dict of arguments (default ``SoapySDR.Device``); tests
        pass a fake.
    **live_options
        ``timeout_s``, ``reconnect``, ``max_reconnects``, ``queue_blocks``,
        ``chunk_samples``, ``clock`` (see ``LiveSource``).

    Attributes
    ----------
    stream_format : str
        The SoapySDR format read (``"CS16"``, ``"CF32"``...).

    Raises
    ------
    SourceError
        Bad device string, no such device, SoapySDR missing, a device that cannot
        receive, a channel, antenna, rate, frequency, gain or setting it does not
        offer, or a stream it cannot set up.
    """

    def __init__(
        self,
        device_args: str = "",
        *,
        center_freq_hz: float = DEFAULT_CENTER_FREQ_HZ,
        sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
        gain_db: float | str | None = None,
        ppm: float | None = None,
        bias_tee: bool | None = None,
        channel: int = 0,
        antenna: str | None = None,
        device_factory: Callable[[dict[str, str]], Any] | None = None,
        **live_options: Any,
    ):
        name = f"soapy:{device_args}"
        super().__init__(
            sample_rate_hz=sample_rate_hz,
            center_freq_hz=center_freq_hz,
            name=name,
            sample_format="cf32",
            **live_options,
        )
        self._args = parse_device_args(device_args, SourceError, allow_empty=True)
        self.gain_db = parse_gain(gain_db, name)
        self.ppm, self.bias_tee = ppm, bias_tee
        self.channel, self.antenna = int(channel), antenna
        self.stream_format = SOAPY_SDR_CF32
        self._factory = device_factory or _open_real_device
        self._device: Any = None
        self._stream_handle: Any = None
        self._scale = 1.0
        self._next_time_ns: int | None = None
        self._lost_pending = False
        self._start()

    @classmethod
    def from_spec(cls, arg: str, **options: Any) -> SoapySource:
        """Open ``soapy:ARGS`` (see the class parameters for ``options``)."""
        return cls(arg, **options)

    # --- opening ----------------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> SourceError:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return SourceError(f"{self.name}: {what}: {detail}")

    def _connect(self) -> None:
        try:
            self._device = self._factory(self._args)
        except (RuntimeError, ValueError, OSError) as exc:
            raise self._fail(
                "no such device, or it cannot be opened (SoapySDRUtil --find lists "
                "devices)",
                exc,
            ) from exc
        try:
            self._check_channel()
            self._configure()
            self._setup_stream()
        except (RuntimeError, ValueError) as exc:
            raise self._fail("cannot set up reception", exc) from exc

    def _check_channel(self) -> None:
        n_rx = int(self._device.getNumChannels(SOAPY_SDR_RX))
        if n_rx == 0:
            raise SourceError(
                f"{self.name}: this device cannot receive (no RX channel)"
            )
        if not 0 <= self.channel < n_rx:
            raise SourceError(
                f"{self.name}: no RX channel {self.channel}; the device has {n_rx} "
                f"(0-{n_rx - 1})"
            )

    def _configure(self) -> None:
        device, ch = self._device, self.channel
        if self.antenna is not None:
            names = list(device.listAntennas(SOAPY_SDR_RX, ch))
            if self.antenna not in names:
                raise SourceError(
                    f"{self.name}: no RX antenna {self.antenna!r}; it has "
                    f"{', '.join(names)}"
                )
            device.setAntenna(SOAPY_SDR_RX, ch, self.antenna)
        self._set_rate()
        self._set_frequency()
        if self.ppm:
            if not device.hasFrequencyCorrection(SOAPY_SDR_RX, ch):
                raise SourceError(f"{self.name}: the device has no ppm correction")
            device.setFrequencyCorrection(SOAPY_SDR_RX, ch, float(self.ppm))
        if self.gain_db is not None:
            self._set_gain()
        if self.bias_tee is not None:
            self._set_bias_tee(bool(self.bias_tee))

    def _set_rate(self) -> None:
        set_sample_rate(
            self._device,
            SOAPY_SDR_RX,
            self.channel,
            self.sample_rate_hz,
            self.name,
            SourceError,
        )

    def _set_frequency(self) -> None:
        set_frequency(
            self._device,
            SOAPY_SDR_RX,
            self.channel,
            self.center_freq_hz,
            self.name,
            SourceError,
        )

    def _set_gain(self) -> None:
        device, ch = self._device, self.channel
        has_agc = bool(device.hasGainMode(SOAPY_SDR_RX, ch))
        if self.gain_db == "auto":
            if not has_agc:
                raise SourceError(
                    f"{self.name}: the device has no automatic gain; give --gain in dB"
                )
            device.setGainMode(SOAPY_SDR_RX, ch, True)
            return
        gain_db = float(self.gain_db)  # type: ignore[arg-type]
        limits = device.getGainRange(SOAPY_SDR_RX, ch)
        if not in_ranges(gain_db, [limits]):
            raise SourceError(
                f"{self.name}: RX gain {gain_db:g} dB outside "
                f"{limits.minimum():g}..{limits.maximum():g} dB"
            )
        if has_agc:
            device.setGainMode(SOAPY_SDR_RX, ch, False)
        device.setGain(SOAPY_SDR_RX, ch, gain_db)

    def _set_bias_tee(self, on: bool) -> None:
        keys = [info.key for info in self._device.getSettingInfo()]
        if "biastee" not in keys:
            raise SourceError(
                f"{self.name}: the driver has no bias tee setting (its settings: "
                f"{', '.join(keys) or 'none'})"
            )
        self._device.writeSetting("biastee", "true" if on else "false")

    def _choose_format(self) -> tuple[str, float]:
        """(SoapySDR format, full scale) to stream: native if known, else CF32."""
        device, ch = self._device, self.channel
        try:
            native, full_scale = device.getNativeStreamFormat(SOAPY_SDR_RX, ch)
        except (TypeError, ValueError):
            # Debian 12's binding cannot return the full scale (a double&).
            return SOAPY_SDR_CF32, 1.0
        offered = list(device.getStreamFormats(SOAPY_SDR_RX, ch))
        if native in _FORMATS and native in offered and full_scale > 0:
            return native, float(full_scale)
        return SOAPY_SDR_CF32, 1.0

    def _setup_stream(self) -> None:
        fmt, full_scale = self._choose_format()
        ours, dtype, nominal = _FORMATS[fmt]
        if self.samples_read and ours != self.sample_format:
            raise SourceError(f"{self.name}: the device came back with format {fmt}")
        self.stream_format = fmt
        self._set_sample_format(ours)
        self._scale = nominal / full_scale
        device = self._device
        self._stream_handle = device.setupStream(SOAPY_SDR_RX, fmt, [self.channel])
        mtu = int(device.getStreamMTU(self._stream_handle)) or _DEFAULT_MTU
        # One buffer of raw components; a cf32 sample is two float32 components.
        self._raw = np.zeros(2 * mtu, dtype=dtype)
        self._mtu = mtu
        ret = device.activateStream(self._stream_handle)
        if isinstance(ret, int) and ret < 0:
            raise SourceError(
                f"{self.name}: cannot start the stream: {error_name(ret)}"
            )
        log.info("%s: streaming %s, MTU %d samples", self.name, fmt, mtu)

    # --- streaming --------------------------------------------------------------------

    def _stream(self, emit: Callable[[bytes | bytearray | memoryview], None]) -> None:
        device, handle, raw = self._device, self._stream_handle, self._raw
        # numpy's stubs give ndarray the buffer protocol only for Python >= 3.12.
        raw_bytes = memoryview(raw.view(np.uint8))  # type: ignore[arg-type]
        while self._streaming():
            try:
                result = device.readStream(
                    handle, [raw], self._mtu, timeoutUs=_READ_TIMEOUT_US
                )
            except (RuntimeError, ValueError) as exc:
                raise self._fail("read failed", exc) from exc
            ret = int(result.ret)
            if ret > 0:
                self._account_time(result, ret)
                emit(raw_bytes[: ret * self._sample_size])
            elif ret == SOAPY_SDR_TIMEOUT:
                self._stop.wait(_IDLE_S)
            elif ret == SOAPY_SDR_OVERFLOW:
                self._count_dropped(0, "device overflow")
                self._lost_pending = True
            else:
                raise SourceError(f"{self.name}: read failed: {error_name(ret)}")

    def _account_time(self, result: Any, n_samples: int) -> None:
        """After an overflow, count the samples the hardware time says were lost."""
        if not int(result.flags) & SOAPY_SDR_HAS_TIME:
            self._next_time_ns = None
            self._lost_pending = False
            return
        time_ns = int(result.timeNs)
        if self._lost_pending and self._next_time_ns is not None:
            gap_ns = time_ns - self._next_time_ns
            self.dropped_samples += max(0, round(gap_ns * self.sample_rate_hz / 1e9))
        self._lost_pending = False
        self._next_time_ns = time_ns + round(n_samples * 1e9 / self.sample_rate_hz)

    def _convert(
        self, raw: bytes | bytearray | memoryview
    ) -> npt.NDArray[np.complex64]:
        iq = super()._convert(raw)
        if self._scale != 1.0:
            iq *= np.float32(self._scale)
        return iq

    def _disconnect(self) -> None:
        device, handle = self._device, self._stream_handle
        self._device, self._stream_handle = None, None
        if device is None:
            return
        for what, call in (
            ("stop the stream", lambda: device.deactivateStream(handle)),
            ("close the stream", lambda: device.closeStream(handle)),
        ):
            if handle is not None:
                try:
                    call()
                except (RuntimeError, ValueError) as exc:
                    log.warning("%s: cannot %s: %s", self.name, what, exc)
        close = getattr(device, "close", None)
        if close is not None:
            try:
                close()
            except (RuntimeError, ValueError) as exc:
                log.warning("%s: cannot release the device: %s", self.name, exc)
