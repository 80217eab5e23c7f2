"""SoapySDR receive: a fake driver for overflow accounting, native formats and every
refusal; then the real SoapySDR API end to end against the ``wmbusloop`` module's RX
side, which plays a CF32 file (built as in tests/sdr/test_soapy.py).

wmbusloop cannot raise an overflow flag, so the overflow counting is tested through the
fake driver only.
"""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from sdr import soapy as soapy_consts
from sdr.source import open_source
from sdr.source_soapy import SoapySource
from stack.errors import SourceError
from tests.sdr.test_soapy import DRIVER, loopback, loopback_lib, soapy  # noqa: F401

RATE_HZ = 2_400_000
FREQ_HZ = 868_950_000
HAS_TIME = soapy_consts.SOAPY_SDR_HAS_TIME


class FakeRange:
    def __init__(self, low: float, high: float):
        self.low, self.high = low, high

    def minimum(self) -> float:
        return self.low

    def maximum(self) -> float:
        return self.high


class FakeRxDevice:
    """A receiver whose readStream plays ``script``: arrays of samples (as complex),
    error codes, or (samples, time_ns) pairs carrying hardware time."""

    def __init__(self, script=(), *, native=None, n_rx=1, agc=True, settings=()):
        self.script = list(script)
        self.native = native  # (format, full scale) or None: binding cannot say
        self.n_rx, self.agc, self.settings = n_rx, agc, list(settings)
        self.calls: list[tuple] = []
        self.rate_hz = 0.0

    def __getattr__(self, name):  # setters and stream calls: recorded
        def record(*args):
            self.calls.append((name, *args))
            return 0

        return record

    def getNumChannels(self, direction):
        return self.n_rx if direction == soapy_consts.SOAPY_SDR_RX else 0

    def getSampleRateRange(self, direction, channel):
        return [FakeRange(1e6, 10e6)]

    def setSampleRate(self, direction, channel, rate_hz):
        self.calls.append(("setSampleRate", rate_hz))
        self.rate_hz = rate_hz

    def getSampleRate(self, direction, channel):
        return self.rate_hz

    def getFrequencyRange(self, direction, channel):
        return [FakeRange(24e6, 1.7e9)]

    def getGainRange(self, direction, channel):
        return FakeRange(0.0, 49.6)

    def hasGainMode(self, direction, channel):
        return self.agc

    def hasFrequencyCorrection(self, direction, channel):
        return True

    def listAntennas(self, direction, channel):
        return ["RX", "LNA"]

    def getSettingInfo(self):
        return [SimpleNamespace(key=k) for k in self.settings]

    def getNativeStreamFormat(self, direction, channel):
        if self.native is None:
            raise TypeError("argument 4 of type 'double &'")
        return self.native

    def getStreamFormats(self, direction, channel):
        return ["CS8", "CS16", "CF32"]

    def setupStream(self, direction, fmt, channels):
        self.calls.append(("setupStream", direction, fmt, channels))
        self.format = fmt
        return "stream"

    def getStreamMTU(self, stream):
        return 1024

    def readStream(self, stream, buffs, n_max, timeoutUs=100000):
        if not self.script:
            return SimpleNamespace(
                ret=soapy_consts.SOAPY_SDR_TIMEOUT, flags=0, timeNs=0
            )
        item = self.script.pop(0)
        if isinstance(item, int):
            return SimpleNamespace(ret=item, flags=0, timeNs=0)
        if isinstance(item, Exception):
            raise item
        samples, time_ns = item if isinstance(item, tuple) else (item, None)
        raw = buffs[0]
        if self.format == "CF32":
            raw.view(np.complex64)[: samples.size] = samples
        else:  # integer codes, interleaved I, Q
            codes = np.stack([samples.real, samples.imag], axis=1).ravel()
            raw[: codes.size] = codes.astype(raw.dtype)
        flags = 0 if time_ns is None else HAS_TIME
        return SimpleNamespace(ret=samples.size, flags=flags, timeNs=time_ns or 0)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def fake_source(device: FakeRxDevice, **options) -> SoapySource:
    options = {"sample_rate_hz": RATE_HZ, "center_freq_hz": FREQ_HZ, **options}
    options.setdefault("timeout_s", 0.3)
    opened = []

    def factory(args):
        opened.append(args)
        return device

    source = SoapySource("driver=fake,serial=7", device_factory=factory, **options)
    assert opened == [{"driver": "fake", "serial": "7"}]
    return source


def drain(source) -> tuple[np.ndarray, SourceError | None]:
    blocks = []
    for _ in range(10_000):
        try:
            block = source.read()
        except SourceError as exc:
            return np.concatenate(blocks or [np.zeros(0, np.complex64)]), exc
        if not block.size:
            break
        blocks.append(block)
    return np.concatenate(blocks or [np.zeros(0, np.complex64)]), None


def ramp(n: int, start: int = 0) -> np.ndarray:
    index = np.arange(start, start + n, dtype=np.float32)
    return (index / 4096 + 1j * (-index / 4096)).astype(np.complex64)


# --- the fake driver ------------------------------------------------------------------


def test_settings_in_order_then_a_cf32_stream():
    device = FakeRxDevice([ramp(700), ramp(300, 700)])
    source = fake_source(device, gain_db=30.5, ppm=-2.5, antenna="LNA")
    iq, error = drain(source)
    source.close()
    np.testing.assert_array_equal(iq, ramp(1000))
    assert "no samples for 0.3 s" in str(error)
    rx = soapy_consts.SOAPY_SDR_RX
    assert device.calls[:8] == [
        ("setAntenna", rx, 0, "LNA"),
        ("setSampleRate", RATE_HZ),
        ("setFrequency", rx, 0, FREQ_HZ),
        ("setFrequencyCorrection", rx, 0, -2.5),
        ("setGainMode", rx, 0, False),
        ("setGain", rx, 0, 30.5),
        ("setupStream", rx, "CF32", [0]),
        ("activateStream", "stream"),
    ]
    assert device.names()[-3:] == ["deactivateStream", "closeStream", "close"]
    assert source.stream_format == "CF32"


def test_auto_gain_and_bias_tee_setting():
    device = FakeRxDevice(settings=["biastee", "direct_samp"])
    source = fake_source(device, gain_db="auto", bias_tee=True)
    source.close()
    assert ("setGainMode", soapy_consts.SOAPY_SDR_RX, 0, True) in device.calls
    assert ("writeSetting", "biastee", "true") in device.calls


def test_native_cs16_with_its_own_full_scale_is_rescaled():
    # A 12-bit device in CS16: codes +-2048 are its full scale, and must read +-1.0.
    codes = np.array([2048 + 0j, -2048 + 1024j, 512 - 2048j], dtype=np.complex64)
    device = FakeRxDevice([codes], native=("CS16", 2048.0))
    source = fake_source(device)
    iq = source.read()
    source.close()
    assert source.stream_format == "CS16" and source.sample_format == "cs16"
    np.testing.assert_allclose(iq, codes / 2048, rtol=0, atol=1e-7)


def test_overflow_with_hardware_time_counts_the_lost_samples():
    ns_per_sample = 1e9 / RATE_HZ
    script = [
        (ramp(1000), 5_000_000),
        soapy_consts.SOAPY_SDR_OVERFLOW,
        # The next block starts 1000 + 480 samples after the first: 480 were lost.
        (ramp(1000, 1480), 5_000_000 + round(1480 * ns_per_sample)),
        (ramp(500, 2480), 5_000_000 + round(2480 * ns_per_sample)),
    ]
    source = fake_source(FakeRxDevice(script))
    iq, _ = drain(source)
    source.close()
    assert iq.size == 2500
    assert (source.drop_events, source.dropped_samples) == (1, 480)


def test_overflow_without_time_is_an_event_of_unknown_size():
    script = [ramp(100), soapy_consts.SOAPY_SDR_OVERFLOW, ramp(100),
              soapy_consts.SOAPY_SDR_OVERFLOW, ramp(100)]  # fmt: skip
    source = fake_source(FakeRxDevice(script))
    iq, _ = drain(source)
    source.close()
    assert iq.size == 300
    assert (source.drop_events, source.dropped_samples) == (2, 0)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (-2, r"read failed: stream error \(-2\)"),
        (RuntimeError("USB\nunplugged"), "read failed: USB unplugged"),
    ],
)
def test_a_device_error_ends_the_stream_after_its_samples(item, message):
    source = fake_source(FakeRxDevice([ramp(50), item, ramp(50)]))
    iq, error = drain(source)
    source.close()
    assert iq.size == 50
    assert error is not None and "\n" not in str(error)
    assert re.search(message, str(error)), str(error)


def test_reconnect_opens_the_device_again():
    devices = [FakeRxDevice([ramp(10), -2]), FakeRxDevice([ramp(20, 10)])]
    opened = []

    def factory(args):
        opened.append(args)
        if len(opened) > len(devices):  # silence after the second: it has gone
            raise RuntimeError("SoapySDR::Device::make() no match")
        return devices[len(opened) - 1]

    source = SoapySource(
        "driver=fake", sample_rate_hz=RATE_HZ, center_freq_hz=FREQ_HZ,
        device_factory=factory, reconnect=True, max_reconnects=1, timeout_s=0.3,
    )  # fmt: skip
    iq, error = drain(source)
    source.close()
    np.testing.assert_array_equal(iq, ramp(30))
    # After a stream error, and after 0.3 s of silence from the second device.
    assert source.reconnects == 1 and len(opened) == 3
    assert devices[0].names()[-1] == devices[1].names()[-1] == "close"
    assert "no such device" in str(error) and "gave up after 1" in str(error)


@pytest.mark.parametrize(
    ("options", "device", "message"),
    [
        ({}, FakeRxDevice(n_rx=0), "cannot receive"),
        ({"channel": 1}, FakeRxDevice(), r"no RX channel 1; the device has 1 \(0-0\)"),
        ({"antenna": "TX"}, FakeRxDevice(), "no RX antenna 'TX'; it has RX, LNA"),
        ({"sample_rate_hz": 20e6}, FakeRxDevice(), "20 MS/s not supported"),
        ({"center_freq_hz": 2.4e9}, FakeRxDevice(), "cannot tune to 2400 MHz"),
        ({"gain_db": 60}, FakeRxDevice(), r"RX gain 60 dB outside 0..49.6 dB"),
        ({"gain_db": "auto"}, FakeRxDevice(agc=False), "no automatic gain"),
        ({"bias_tee": True}, FakeRxDevice(), "no bias tee setting"),
        ({"gain_db": "high"}, FakeRxDevice(), "number of dB or 'auto'"),
    ],
)
def test_settings_the_device_cannot_do(options, device, message):
    with pytest.raises(SourceError, match=message):
        fake_source(device, **options)
    assert "readStream" not in device.names()
    assert not device.calls or device.names()[-1] == "close"


def test_bad_device_strings_and_a_failing_factory():
    with pytest.raises(SourceError, match="bad device string"):
        SoapySource("hackrf", device_factory=lambda a: FakeRxDevice())

    def factory(args):
        raise RuntimeError("SoapySDR::Device::make() no match")

    with pytest.raises(SourceError, match="no such device.*no match"):
        SoapySource("driver=nope", device_factory=factory)


# --- the real SoapySDR API with wmbusloop ---------------------------------------------


def test_constants_match_the_installed_binding(soapy):  # noqa: F811
    assert soapy.SOAPY_SDR_RX == soapy_consts.SOAPY_SDR_RX
    assert soapy.SOAPY_SDR_HAS_TIME == soapy_consts.SOAPY_SDR_HAS_TIME
    assert soapy.SOAPY_SDR_OVERFLOW == soapy_consts.SOAPY_SDR_OVERFLOW


def _real(tmp_path: Path, iq: np.ndarray, extra: str = "", **options):
    rx_path, log_path = tmp_path / "air.cf32", tmp_path / "rx.log"
    iq.astype(np.complex64).tofile(rx_path)
    options = {"sample_rate_hz": RATE_HZ, "center_freq_hz": FREQ_HZ, **options}
    options.setdefault("timeout_s", 0.3)
    spec = f"soapy:driver={DRIVER},rx_path={rx_path},log={log_path}{extra}"
    return open_source(spec, **options), log_path


def test_a_file_through_the_real_api_arrives_sample_for_sample(
    loopback,  # noqa: F811
    tmp_path,
    rng,
):
    iq = ((rng.normal(size=30_001) + 1j * rng.normal(size=30_001)) * 0.3).astype(
        np.complex64
    )
    source, log_path = _real(tmp_path, iq, ",mtu=4096", gain_db=20, antenna="RX")
    got, error = drain(source)
    source.close()
    np.testing.assert_array_equal(got, iq)
    # wmbusloop times out at the end of its file: silence, then the clear error.
    assert "no samples for 0.3 s; the device stopped delivering" in str(error)
    lines = log_path.read_text().splitlines()
    assert lines == [
        "antenna RX",
        f"rate {RATE_HZ}",
        f"frequency {FREQ_HZ}",
        "gain 20",
        "setup CF32",
        "activate",
        "deactivate",
        "close",
    ]
    assert source.dropped_samples == 0


@pytest.mark.parametrize(
    ("extra", "options", "message"),
    [
        (",rx_channels=0", {}, "cannot receive"),
        ("", {"sample_rate_hz": 30e6}, "30 MS/s not supported; it offers 0.1-20 MS/s"),
        ("", {"center_freq_hz": 7e9}, "cannot tune to 7000 MHz; it covers 1-6000 MHz"),
        ("", {"gain_db": 61}, "outside 0..60 dB"),
        ("", {"gain_db": "auto"}, "no automatic gain"),
        ("", {"antenna": "ALT"}, "no RX antenna 'ALT'; it has RX"),
    ],
)
def test_refusals_through_the_real_api(loopback, tmp_path, extra, options, message):  # noqa: F811
    with pytest.raises(SourceError, match=message):
        _real(tmp_path, np.zeros(10, np.complex64), extra, **options)


def test_unknown_driver_through_the_real_api(loopback):  # noqa: F811
    with pytest.raises(SourceError, match="no such device"):
        open_source("soapy:driver=wmbus_no_such_radio", sample_rate_hz=RATE_HZ)
