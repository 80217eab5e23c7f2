"""Transmit through SoapySDR: any device with a TX channel (HackRF, LimeSDR, USRP...).

What happens, and when::

    SoapySink(...)   parse "key=value,..." -> open the device -> it must have a TX
                     channel -> antenna, sample rate, frequency, gain (each checked
                     against the ranges the device reports) -> set up a CF32 stream.
                     Every failure here is a SinkError, and nothing has been sent.
    write(iq)        duty-cycle check (sdr.dutycycle; refuse or delay) -> activate ->
                     writeStream in chunks of the stream MTU, taking partial writes
                     and retrying timeouts -> END_BURST on the last chunk -> wait until
                     the device has played the burst out -> deactivate
    close()          deactivate if still active, close the stream, release the device

A device is idle (stream deactivated) between bursts, so it radiates nothing while a
caller waits between repeats.  ``write(iq, end_burst=False)`` keeps the stream active
for a continuous signal fed in several calls; the burst then ends at ``close()``.

The SoapySDR binding is found by ``sdr.soapy.import_soapysdr`` when a sink is opened,
never when this module is imported.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from sdr.dutycycle import DutyCycleLimiter, measure_airtime
from sdr.sink import SampleSink
from sdr.soapy import (
    SOAPY_ERRORS,
    SOAPY_SDR_CF32,
    SOAPY_SDR_END_BURST,
    SOAPY_SDR_TIMEOUT,
    SOAPY_SDR_TX,
    SOAPY_SDR_UNDERFLOW,
    SYSTEM_SITE_DIRS,
    error_name,
    import_soapysdr,
    in_ranges,
    open_device,
    set_frequency,
    set_sample_rate,
)
from sdr.soapy import parse_device_args as _parse_device_args
from stack.errors import SinkError

__all__ = [
    "SOAPY_SDR_CF32",
    "SOAPY_SDR_END_BURST",
    "SOAPY_SDR_TIMEOUT",
    "SOAPY_SDR_TX",
    "SOAPY_SDR_UNDERFLOW",
    "SYSTEM_SITE_DIRS",
    "SoapySink",
    "import_soapysdr",
    "parse_device_args",
]

log = logging.getLogger(__name__)

# Kept under their old names: the sink's callers and tests import them from here.
_SOAPY_ERRORS = SOAPY_ERRORS

# Timeout of one writeStream call, us (SoapySDR's default).
_WRITE_TIMEOUT_US = 100_000
# Chunk size when a device reports no MTU, samples.
_DEFAULT_MTU = 1 << 16
# How far the device may lag behind the host clock when playing out, s: time after
# the computed end of a burst before the stream is deactivated.
_DRAIN_MARGIN_S = 0.25


def parse_device_args(text: str) -> dict[str, str]:
    """Parse SoapySDR device arguments ``"driver=hackrf,serial=..."`` into a dict.

    Raises
    ------
    SinkError
        Empty, or an item without ``key=``.
    """
    return _parse_device_args(text, SinkError)


def _open_real_device(args: dict[str, str]) -> Any:
    return open_device(args, SinkError)


class SoapySink(SampleSink):
    """A SoapySDR device that transmits what is written to it.

    Parameters
    ----------
    device_args : str
        SoapySDR device arguments, ``"driver=hackrf"`` or ``"driver=uhd,serial=..."``.
    center_freq_hz : float
        RF frequency of baseband 0 Hz, Hz.
    sample_rate_hz : float
        Sample rate, samples per second.
    gain_db : float or None
        Overall TX gain, dB; None leaves the device's default.
    channel : int
        TX channel index.
    antenna : str or None
        TX antenna name (one of the device's ``listAntennas``); None: its default.
    device_factory : callable or None
        Opens a device from a dict of arguments; default ``SoapySDR.Device``.  Tests
        pass a fake here.
    duty_cycle : DutyCycleLimiter or None
        Duty-cycle accounting; None: a new one, enabled, policy "refuse", using
        ``clock`` and ``sleep``.  Pass ``DutyCycleLimiter(enabled=False)`` only for
        a shielded set-up.
    clock, sleep : callable
        Monotonic time in s and a sleep in s, for waiting until a burst has been
        played out (``time.monotonic``, ``time.sleep``; tests inject fakes).
    timeout_s : float
        How long the device may accept no samples before the write fails, s.

    Raises
    ------
    SinkError
        Bad device string, no such device, SoapySDR missing, a device that cannot
        transmit, a channel/antenna/rate/frequency/gain it does not offer, or a
        stream it cannot set up.  Nothing has been transmitted then.
    """

    def __init__(
        self,
        device_args: str,
        *,
        center_freq_hz: float,
        sample_rate_hz: float,
        gain_db: float | None = None,
        channel: int = 0,
        antenna: str | None = None,
        device_factory: Callable[[dict[str, str]], Any] | None = None,
        duty_cycle: DutyCycleLimiter | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        timeout_s: float = 1.0,
    ):
        super().__init__(
            sample_rate_hz=sample_rate_hz,
            center_freq_hz=center_freq_hz,
            name=f"soapy:{device_args}",
            sample_format="cf32",
        )
        args = parse_device_args(device_args)
        self.channel = int(channel)
        self.duty_cycle = (
            DutyCycleLimiter(clock, sleep=sleep) if duty_cycle is None else duty_cycle
        )
        self._clock = clock
        self._sleep = sleep
        self._max_stalls = max(1, math.ceil(timeout_s * 1e6 / _WRITE_TIMEOUT_US))
        self._end_burst = True
        self._active = False
        self._burst_start_s = 0.0
        self._burst_samples = 0
        self._stream: Any = None
        self._device = self._open(device_factory or _open_real_device, args)
        try:
            self._configure(gain_db, antenna)
        except BaseException:
            # Keep the configuration error; a failing release only gets logged.
            try:
                self._release()
            except SinkError as exc:
                log.warning("%s", exc)
            raise

    @classmethod
    def from_spec(cls, arg: str, **options: Any) -> SoapySink:
        """Open ``soapy:ARG`` (see the class parameters for ``options``)."""
        return cls(arg, **options)

    # --- opening -------------------------------------------------------------------

    def _fail(self, what: str, exc: BaseException) -> SinkError:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        return SinkError(f"{self.name}: {what}: {detail}")

    def _open(self, factory: Callable[[dict[str, str]], Any], args: dict) -> Any:
        try:
            return factory(args)
        except (RuntimeError, ValueError, OSError) as exc:
            raise self._fail(
                "no such device, or it cannot be opened (SoapySDRUtil --find lists "
                "devices)",
                exc,
            ) from exc

    def _configure(self, gain_db: float | None, antenna: str | None) -> None:
        device, ch = self._device, self.channel
        try:
            n_tx = int(device.getNumChannels(SOAPY_SDR_TX))
            if n_tx == 0:
                raise SinkError(
                    f"{self.name}: this device cannot transmit (no TX channel)"
                )
            if not 0 <= ch < n_tx:
                raise SinkError(
                    f"{self.name}: no TX channel {ch}; the device has {n_tx} "
                    f"(0-{n_tx - 1})"
                )
            if antenna is not None:
                self._set_antenna(antenna)
            self._set_rate()
            self._set_frequency()
            if gain_db is not None:
                self._set_gain(float(gain_db))
            self._stream = device.setupStream(SOAPY_SDR_TX, SOAPY_SDR_CF32, [ch])
            self._mtu = int(device.getStreamMTU(self._stream)) or _DEFAULT_MTU
        except (RuntimeError, ValueError) as exc:
            raise self._fail("cannot set up transmission", exc) from exc

    def _set_antenna(self, antenna: str) -> None:
        names = list(self._device.listAntennas(SOAPY_SDR_TX, self.channel))
        if antenna not in names:
            raise SinkError(
                f"{self.name}: no TX antenna {antenna!r}; it has {', '.join(names)}"
            )
        self._device.setAntenna(SOAPY_SDR_TX, self.channel, antenna)

    def _set_rate(self) -> None:
        set_sample_rate(
            self._device,
            SOAPY_SDR_TX,
            self.channel,
            self.sample_rate_hz,
            self.name,
            SinkError,
        )

    def _set_frequency(self) -> None:
        set_frequency(
            self._device,
            SOAPY_SDR_TX,
            self.channel,
            self.center_freq_hz,
            self.name,
            SinkError,
        )

    def _set_gain(self, gain_db: float) -> None:
        limits = self._device.getGainRange(SOAPY_SDR_TX, self.channel)
        if not in_ranges(gain_db, [limits]):
            raise SinkError(
                f"{self.name}: TX gain {gain_db:g} dB outside "
                f"{limits.minimum():g}..{limits.maximum():g} dB"
            )
        self._device.setGain(SOAPY_SDR_TX, self.channel, gain_db)

    # --- writing -------------------------------------------------------------------

    def write(self, iq: npt.ArrayLike, *, end_burst: bool = True) -> None:
        """Transmit samples (after the duty-cycle check).

        Parameters
        ----------
        iq : array_like of complex, shape (n_samples,)
            Baseband, full scale +-1.0 per component.
        end_burst : bool
            True (default): these samples are a whole burst; mark its end, wait
            until the device has sent it, and idle the device.  False: more samples
            follow at once (a continuous signal in several calls).

        Raises
        ------
        DutyCycleError
            The duty-cycle limiter refuses (nothing of ``iq`` is sent).
        SinkError
            Closed sink, the device timed out, underflowed or reported an error.
        ValueError
            ``iq`` is not a 1-D complex array.
        """
        self._end_burst = end_burst
        super().write(iq)

    def _write_raw(self, data: bytes) -> None:
        iq = np.frombuffer(data, dtype="<c8")
        if iq.size:
            if self.duty_cycle.enabled:
                self.duty_cycle.acquire(
                    measure_airtime(iq, self.sample_rate_hz, self.center_freq_hz)
                )
            self._activate()
            self._send(iq)
        if self._end_burst and self._active:
            self._finish_burst(drain=True)

    def _activate(self) -> None:
        if self._active:
            return
        ret = self._call(
            "activate the stream", self._device.activateStream, self._stream
        )
        if isinstance(ret, int) and ret < 0:
            raise SinkError(
                f"{self.name}: cannot activate the stream: {error_name(ret)}"
            )
        self._active = True
        self._burst_start_s = self._clock()
        self._burst_samples = 0

    def _send(self, iq: npt.NDArray[np.complex64]) -> None:
        """writeStream all of ``iq``: partial writes continue, timeouts retry."""
        pos, stalls = 0, 0
        while pos < iq.size:
            count = min(iq.size - pos, self._mtu)
            last = pos + count == iq.size
            flags = SOAPY_SDR_END_BURST if last and self._end_burst else 0
            ret = self._write_chunk(iq[pos : pos + count], flags)
            if 0 < ret <= count:
                pos, stalls = pos + ret, 0
            elif ret in (0, SOAPY_SDR_TIMEOUT) and stalls + 1 < self._max_stalls:
                stalls += 1
            else:
                raise SinkError(self._write_error_text(ret, count, pos, iq.size))
            self._burst_samples += max(ret, 0)

    def _write_chunk(self, chunk: npt.NDArray[np.complex64], flags: int) -> int:
        result = self._call(
            "write",
            self._device.writeStream,
            self._stream,
            [chunk],
            chunk.size,
            flags,
            0,
            _WRITE_TIMEOUT_US,
        )
        return int(getattr(result, "ret", result))

    def _write_error_text(self, ret: int, count: int, pos: int, total: int) -> str:
        where = f"after {pos} of {total} samples"
        if ret in (0, SOAPY_SDR_TIMEOUT):
            timeout_s = self._max_stalls * _WRITE_TIMEOUT_US / 1e6
            return (
                f"{self.name}: timeout: the device took no samples for "
                f"{timeout_s:g} s {where}"
            )
        if ret == SOAPY_SDR_UNDERFLOW:
            return (
                f"{self.name}: underflow {where}: the device ran out of samples, so "
                "the burst went out with a gap"
            )
        if ret > count:
            return f"{self.name}: the device reports {ret} samples written of {count}"
        return f"{self.name}: write failed {where}: {error_name(ret)}"

    def _finish_burst(self, *, drain: bool) -> None:
        """Let the device play the burst out (``drain``), then deactivate."""
        if drain:
            end_s = (
                self._burst_start_s
                + self._burst_samples / self.sample_rate_hz
                + _DRAIN_MARGIN_S
            )
            wait_s = end_s - self._clock()
            if wait_s > 0:
                self._sleep(wait_s)
        self._active = False
        ret = self._call(
            "deactivate the stream", self._device.deactivateStream, self._stream
        )
        if isinstance(ret, int) and ret < 0:
            raise SinkError(
                f"{self.name}: cannot deactivate the stream: {error_name(ret)}"
            )

    def _call(self, what: str, method: Callable[..., Any], *args: Any) -> Any:
        try:
            return method(*args)
        except (RuntimeError, ValueError) as exc:
            raise self._fail(f"cannot {what}", exc) from exc

    # --- closing -------------------------------------------------------------------

    def _close(self) -> None:
        try:
            if self._active:
                self._finish_burst(drain=True)
        finally:
            self._release()

    def _abort(self) -> None:
        # Stop at once: what was sent cannot be taken back, the rest is not sent.
        try:
            if self._active:
                self._finish_burst(drain=False)
        finally:
            self._release()

    def _release(self) -> None:
        """Close the stream and the device; idempotent."""
        device, stream = self._device, self._stream
        self._device, self._stream, self._active = None, None, False
        try:
            if device is not None and stream is not None:
                device.closeStream(stream)
        except (RuntimeError, ValueError) as exc:
            raise self._fail("cannot close the stream", exc) from exc
        finally:
            # The SWIG binding's Device.close() releases the device (SoapySDR unmake).
            close = getattr(device, "close", None)
            if close is not None:
                self._call("release the device", close)
