"""SoapySDR transmit: a fake driver for every error path, then the real SoapySDR API end
to end through ``wmbusloop``, a file-backed device module built from
tests/soapy_loopback/ against Debian's libsoapysdr-dev.

The real-API tests skip (with the reason) only where SoapySDR's Python binding cannot
be imported or the module cannot be compiled; scripts/install-system-deps.sh
installs both.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsp.modulator import modulate_frame
from sdr import sink_soapy
from sdr.dutycycle import DutyCycleError, DutyCycleLimiter, find_sub_band
from sdr.sink import open_sink
from sdr.sink_soapy import (
    SOAPY_SDR_END_BURST,
    SoapySink,
    import_soapysdr,
    parse_device_args,
)
from stack.errors import SinkError
from stack.frame import add_crcs

REPO = Path(__file__).resolve().parents[2]
LOOPBACK_DIR = REPO / "tests" / "soapy_loopback"
RATE_HZ = 2.4e6
T1_HZ = 868.95e6
DRIVER = "wmbusloop"


class FakeClock:
    """Monotonic time that moves only by ``sleep``: no test waits for real."""

    def __init__(self) -> None:
        self.now_s = 500.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now_s += seconds


def t1_burst() -> np.ndarray:
    """A real T1 burst of a made-up telegram, at 868.95 MHz baseband."""
    data = bytes([0x1E, 0x44, 0x93, 0x15]) + bytes(range(40, 67))
    return modulate_frame(add_crcs(data, "A"), "T1", sample_rate_hz=RATE_HZ)


# --- a fake driver, injected through device_factory -----------------------------------


class FakeRange:
    def __init__(self, low: float, high: float):
        self.low, self.high = low, high

    def minimum(self) -> float:
        return self.low

    def maximum(self) -> float:
        return self.high


class FakeResult:
    def __init__(self, ret: int):
        self.ret = ret
        self.flags = 0


class FakeDevice:
    """Records every call; ``replies`` scripts writeStream's return values."""

    def __init__(self, n_tx=1, replies=None, rate_set=None, max_elems=None):
        self.n_tx = n_tx
        self.replies = list(replies or [])
        self.rate_set = rate_set
        self.max_elems = max_elems
        self.calls: list[tuple] = []
        self.samples: list[np.ndarray] = []
        self.write_flags: list[int] = []
        self.rate_hz = 0.0

    def __getattr__(self, name):  # every setter and stream call not defined below
        def record(*args):
            self.calls.append((name, *args))
            return 0

        return record

    def getNumChannels(self, direction):
        return self.n_tx if direction == sink_soapy.SOAPY_SDR_TX else 1

    def getSampleRateRange(self, direction, channel):
        return [FakeRange(1e5, 1e7)]

    def setSampleRate(self, direction, channel, rate_hz):
        self.calls.append(("setSampleRate", rate_hz))
        self.rate_hz = self.rate_set or rate_hz

    def getSampleRate(self, direction, channel):
        return self.rate_hz

    def getFrequencyRange(self, direction, channel):
        return [FakeRange(70e6, 6e9)]

    def getGainRange(self, direction, channel):
        return FakeRange(0.0, 47.0)

    def listAntennas(self, direction, channel):
        return ["TX", "ALT"]

    def getStreamMTU(self, stream):
        return 4096

    def writeStream(self, stream, buffs, n, flags, time_ns, timeout_us):
        self.calls.append(("writeStream", n, flags))
        ret = self.replies.pop(0) if self.replies else n
        if isinstance(ret, Exception):
            raise ret
        if ret == "all":
            ret = n
        if self.max_elems is not None:
            ret = min(ret, self.max_elems)
        if ret > 0:
            self.samples.append(np.array(buffs[0][:ret]))
            self.write_flags.append(flags if ret == n else 0)
        return FakeResult(ret)

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


def fake_sink(device=None, clock=None, **kwargs) -> tuple[SoapySink, FakeDevice]:
    device = device or FakeDevice()
    clock = clock or FakeClock()
    opened = []

    def factory(args):
        opened.append(args)
        return device

    options = {"center_freq_hz": T1_HZ, "sample_rate_hz": RATE_HZ, **kwargs}
    sink = SoapySink(
        "driver=fake,serial=42",
        device_factory=factory,
        clock=clock,
        sleep=clock.sleep,
        **options,
    )
    assert opened == [{"driver": "fake", "serial": "42"}]
    return sink, device


def test_sets_antenna_rate_frequency_gain_then_a_cf32_tx_stream():
    sink, device = fake_sink(gain_db=20.5, antenna="ALT", channel=0)
    assert device.calls == [
        ("setAntenna", 0, 0, "ALT"),
        ("setSampleRate", RATE_HZ),
        ("setFrequency", 0, 0, T1_HZ),
        ("setGain", 0, 0, 20.5),
        ("setupStream", 0, "CF32", [0]),
    ]
    sink.close()
    assert device.names()[-2:] == ["closeStream", "close"]


def test_partial_writes_deliver_every_sample_in_order_and_end_the_burst_once():
    iq = t1_burst()
    clock = FakeClock()
    sink, device = fake_sink(FakeDevice(max_elems=1000), clock)
    sink.write(iq)
    np.testing.assert_array_equal(np.concatenate(device.samples), iq)
    assert device.write_flags[-1] == SOAPY_SDR_END_BURST
    assert not any(device.write_flags[:-1])
    # Deactivated only after the burst's airtime has passed (drain), before close.
    assert device.names()[-1] == "deactivateStream"
    assert clock.now_s - 500.0 >= iq.size / RATE_HZ
    sink.close()
    assert sink.samples_written == iq.size


def test_timeouts_are_retried_then_fail_with_a_clear_error():
    iq = np.ones(100, np.complex64) * 0.5
    sink, device = fake_sink(FakeDevice(replies=[-1, -1, 0, "all"]))
    sink.write(iq)
    np.testing.assert_array_equal(np.concatenate(device.samples), iq)
    sink, device = fake_sink(FakeDevice(replies=[-1] * 100), timeout_s=0.5)
    with pytest.raises(SinkError, match=r"timeout: .* 0.5 s after 0 of 100 samples"):
        sink.write(iq)


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (-7, "underflow after 40 of 100 samples"),
        (-2, r"write failed after 40 of 100 samples: stream error \(-2\)"),
        (-99, r"error \(-99\)"),
        (RuntimeError("USB\ntransfer failed"), "cannot write: USB transfer failed"),
        (5000, "reports 5000 samples written of 60"),
    ],
)
def test_write_errors_become_one_line_sink_errors(reply, message):
    sink, device = fake_sink(FakeDevice(replies=[40, reply]))
    with pytest.raises(SinkError, match=message) as info:
        sink.write(np.full(100, 0.5, np.complex64))
    assert "\n" not in str(info.value)
    assert sink.samples_written == 0


def test_a_device_that_cannot_transmit_is_refused_and_released():
    device = FakeDevice(n_tx=0)
    with pytest.raises(SinkError, match="cannot transmit"):
        fake_sink(device)
    assert "setupStream" not in device.names()
    assert device.names()[-1] == "close"


@pytest.mark.parametrize(
    ("kwargs", "device", "message"),
    [
        ({"channel": 1}, FakeDevice(), r"no TX channel 1; the device has 1 \(0-0\)"),
        ({"antenna": "RX2"}, FakeDevice(), "no TX antenna 'RX2'; it has TX, ALT"),
        ({"sample_rate_hz": 20e6}, FakeDevice(), "20 MS/s not supported"),
        ({}, FakeDevice(rate_set=2.5e6), "the device set 2500000 S/s"),
        ({"center_freq_hz": 10e6}, FakeDevice(), "cannot tune to 10 MHz"),
        ({"gain_db": 60.0}, FakeDevice(), r"gain 60 dB outside 0..47 dB"),
    ],
)
def test_settings_the_device_cannot_do_are_refused_before_sending(
    kwargs, device, message
):
    with pytest.raises(SinkError, match=message):
        fake_sink(device, **kwargs)
    assert "writeStream" not in device.names()
    assert device.names()[-1] == "close"


def test_a_failing_factory_is_one_line():
    def factory(args):
        raise RuntimeError("SoapySDR::Device::make() no match")

    with pytest.raises(SinkError, match="no such device.*no match"):
        SoapySink(
            "driver=nope",
            center_freq_hz=T1_HZ,
            sample_rate_hz=RATE_HZ,
            device_factory=factory,
        )


@pytest.mark.parametrize("text", ["", "  ", "hackrf", "=x", "driver=hackrf,,"])
def test_bad_device_strings(text):
    with pytest.raises(SinkError, match="soapy: "):
        parse_device_args(text)


def test_parse_device_args():
    assert parse_device_args("driver=uhd, serial=3A, type=b200") == {
        "driver": "uhd",
        "serial": "3A",
        "type": "b200",
    }


def test_duty_cycle_refusal_sends_nothing():
    clock = FakeClock()
    limiter = DutyCycleLimiter(clock, sleep=clock.sleep)
    limiter.record(T1_HZ, 3.599)  # almost all of the T1 band's 3.6 s per hour
    sink, device = fake_sink(clock=clock, duty_cycle=limiter)
    with pytest.raises(DutyCycleError, match="868.70-869.20 MHz allows 0.1%"):
        sink.write(t1_burst())
    assert "activateStream" not in device.names()
    assert "writeStream" not in device.names()
    assert sink.samples_written == 0


def test_duty_cycle_delay_waits_on_the_clock_then_sends():
    clock = FakeClock()
    limiter = DutyCycleLimiter(clock, policy="delay", sleep=clock.sleep)
    limiter.record(T1_HZ, 3.599)  # ends at 503.599
    sink, device = fake_sink(clock=clock, duty_cycle=limiter)
    sink.write(t1_burst())
    assert clock.slept[0] == pytest.approx(503.599 + 3600 - 500, abs=1e-3)
    assert "writeStream" in device.names()


def test_default_limiter_counts_each_burst():
    sink, _ = fake_sink()
    band = find_sub_band(T1_HZ)
    iq = t1_burst()
    for _ in range(3):
        sink.write(iq)
    used = sink.duty_cycle.used_s(band)
    assert 3 * iq.size / RATE_HZ <= used <= 3 * (iq.size + 2048) / RATE_HZ
    assert sink.duty_cycle.enabled and sink.duty_cycle.policy == "refuse"


def test_disabled_limiter_allows_anything_even_outside_the_srd_band():
    limiter = DutyCycleLimiter(enabled=False)
    sink, device = fake_sink(center_freq_hz=433.92e6, duty_cycle=limiter)
    sink.write(np.full(10_000, 0.7, np.complex64))
    assert sum(s.size for s in device.samples) == 10_000
    # Enabled, the same write is out of band.
    sink, device = fake_sink(center_freq_hz=433.92e6)
    with pytest.raises(SinkError, match="outside the SRD sub-bands"):
        sink.write(np.full(10_000, 0.7, np.complex64))
    assert "writeStream" not in device.names()


def test_continuous_stream_over_several_writes_ends_at_close():
    clock = FakeClock()
    sink, device = fake_sink(clock=clock)
    iq = t1_burst()
    sink.write(iq[:5000], end_burst=False)
    sink.write(iq[5000:], end_burst=False)
    assert device.names().count("activateStream") == 1
    assert "deactivateStream" not in device.names()
    assert not any(device.write_flags)
    sink.close()
    assert device.names()[-3:] == ["deactivateStream", "closeStream", "close"]
    assert clock.now_s - 500.0 >= iq.size / RATE_HZ
    np.testing.assert_array_equal(np.concatenate(device.samples), iq)


def test_an_exception_in_the_with_block_stops_at_once():
    clock = FakeClock()
    sink, device = fake_sink(clock=clock)
    with pytest.raises(KeyboardInterrupt), sink:
        sink.write(t1_burst()[:3000], end_burst=False)
        raise KeyboardInterrupt
    assert clock.slept == []  # no drain
    assert device.names()[-3:] == ["deactivateStream", "closeStream", "close"]


def test_write_after_close():
    sink, _ = fake_sink()
    sink.close()
    sink.close()  # idempotent
    with pytest.raises(SinkError, match="closed"):
        sink.write(np.zeros(4, np.complex64))


def test_open_sink_spec_with_a_fake_factory():
    device = FakeDevice()
    with open_sink(
        "soapy:driver=fake",
        sample_rate_hz=RATE_HZ,
        center_freq_hz=T1_HZ,
        device_factory=lambda args: device,
    ) as sink:
        assert isinstance(sink, SoapySink)
        assert sink.name == "soapy:driver=fake"


def test_importing_the_module_does_not_import_soapysdr():
    code = "import sys, sdr.sink_soapy; print('SoapySDR' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "False"


# --- the real SoapySDR API ---------------------------------------------------------


@pytest.fixture(scope="session")
def soapy():
    try:
        return import_soapysdr()
    except ModuleNotFoundError as exc:
        pytest.skip(
            f"SoapySDR Python binding not importable ({exc}); "
            "run scripts/install-system-deps.sh"
        )


@pytest.fixture(scope="session")
def loopback_lib(tmp_path_factory) -> Path:
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler to build the wmbusloop SoapySDR module")
    if not Path("/usr/include/SoapySDR/Device.hpp").is_file():
        pytest.skip(
            "libsoapysdr-dev headers missing; run scripts/install-system-deps.sh"
        )
    out_dir = tmp_path_factory.mktemp("soapy_plugins")
    build = subprocess.run(
        ["bash", str(LOOPBACK_DIR / "build.sh"), str(out_dir)],
        capture_output=True,
        text=True,
    )
    if build.returncode != 0:
        pytest.skip(f"wmbusloop module did not build: {build.stderr.strip()[-300:]}")
    return Path(build.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="session")
def loopback(soapy, loopback_lib):
    """SoapySDR with the wmbusloop driver loaded into this process.

    SOAPY_SDR_PLUGIN_PATH works if SoapySDR has not scanned its modules yet in this
    process; if it has (another test opened a device first), load the file directly.
    """
    saved = os.environ.get("SOAPY_SDR_PLUGIN_PATH")
    os.environ["SOAPY_SDR_PLUGIN_PATH"] = str(loopback_lib.parent)
    try:
        found = soapy.Device.enumerate({"driver": DRIVER})
    finally:  # read once, at the first scan: no need to leak it to other tests
        if saved is None:
            del os.environ["SOAPY_SDR_PLUGIN_PATH"]
        else:
            os.environ["SOAPY_SDR_PLUGIN_PATH"] = saved
    if not found:
        error = soapy.loadModule(str(loopback_lib))
        assert not error, error
    assert soapy.Device.enumerate({"driver": DRIVER})
    return soapy


def _log(path: Path) -> list[str]:
    return path.read_text().splitlines()


def real_sink(tmp_path, extra="", clock=None, **kwargs) -> tuple[SoapySink, Path, Path]:
    out, log = tmp_path / "tx.cf32", tmp_path / "tx.log"
    clock = clock or FakeClock()
    options = {"center_freq_hz": T1_HZ, "sample_rate_hz": RATE_HZ, **kwargs}
    sink = open_sink(
        f"soapy:driver={DRIVER},path={out},log={log}{extra}",
        clock=clock,
        sleep=clock.sleep,
        **options,
    )
    return sink, out, log


def test_constants_match_the_installed_binding(soapy):
    assert soapy.SOAPY_SDR_TX == sink_soapy.SOAPY_SDR_TX
    assert soapy.SOAPY_SDR_END_BURST == sink_soapy.SOAPY_SDR_END_BURST
    assert soapy.SOAPY_SDR_CF32 == sink_soapy.SOAPY_SDR_CF32
    assert soapy.SOAPY_SDR_TIMEOUT == sink_soapy.SOAPY_SDR_TIMEOUT
    assert soapy.SOAPY_SDR_UNDERFLOW == sink_soapy.SOAPY_SDR_UNDERFLOW
    for code, name in sink_soapy._SOAPY_ERRORS.items():
        assert soapy.errToStr(code).lower().replace("_", " ") == name


def test_t1_burst_through_soapysdr_to_file_is_sample_exact(loopback, tmp_path):
    iq = t1_burst()
    # MTU 4096 but at most 1500 per call: the sink must follow partial writes.
    sink, out, log = real_sink(
        tmp_path, ",mtu=4096,max_elems=1500", gain_db=12.5, antenna="ALT"
    )
    with sink:
        sink.write(iq)
    np.testing.assert_array_equal(np.fromfile(out, dtype="<c8"), iq)
    lines = _log(log)
    assert lines[:5] == [
        "antenna ALT",
        f"rate {RATE_HZ:.0f}",
        f"frequency {T1_HZ:.0f}",
        "gain 12.5",
        "setup CF32",
    ]
    writes = [line.split() for line in lines if line.startswith("write")]
    assert sum(int(n) for _, n, _ in writes) == iq.size
    assert all(int(n) <= 1500 for _, n, _ in writes)
    flags = [int(f) for _, _, f in writes]
    assert flags[-1] == SOAPY_SDR_END_BURST and not any(flags[:-1])
    assert lines[5] == "activate" and lines[-2:] == ["deactivate", "close"]


def test_repeated_bursts_activate_and_idle_the_device_each_time(loopback, tmp_path):
    iq = t1_burst()
    sink, out, log = real_sink(tmp_path)
    with sink:
        for _ in range(3):
            sink.write(iq)
    np.testing.assert_array_equal(np.fromfile(out, dtype="<c8"), np.tile(iq, 3))
    lines = _log(log)
    assert lines.count("activate") == 3 and lines.count("deactivate") == 3


def test_read_the_file_back_through_the_rx_stream(loopback, tmp_path):
    iq = t1_burst()
    sink, out, _ = real_sink(tmp_path)
    with sink:
        sink.write(iq)
    device = loopback.Device({"driver": DRIVER, "rx_path": str(out)})
    stream = device.setupStream(loopback.SOAPY_SDR_RX, loopback.SOAPY_SDR_CF32, [0])
    device.activateStream(stream)
    got, buf = [], np.zeros(7000, np.complex64)
    while (result := device.readStream(stream, [buf], buf.size)).ret > 0:
        got.append(buf[: result.ret].copy())
    assert result.ret == loopback.SOAPY_SDR_TIMEOUT
    device.deactivateStream(stream)
    device.closeStream(stream)
    device.close()
    np.testing.assert_array_equal(np.concatenate(got), iq)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (",fail_at=5000", "underflow after 5000 of"),
        (",fail_at=100,fail_code=-1", r"timeout: the device took no samples for 1 s"),
        (",fail_at=0,fail_code=-2", r"stream error \(-2\)"),
    ],
)
def test_device_errors_through_the_real_api(loopback, tmp_path, extra, message):
    sink, _, log = real_sink(tmp_path, extra)
    with pytest.raises(SinkError, match=message), sink:
        sink.write(t1_burst())
    assert _log(log)[-2:] == ["deactivate", "close"]


def test_unknown_driver_is_a_sink_error(loopback):
    with pytest.raises(SinkError, match="no such device.*no match"):
        open_sink(
            "soapy:driver=wmbus_no_such_radio",
            sample_rate_hz=RATE_HZ,
            center_freq_hz=T1_HZ,
        )


def test_null_driver_cannot_transmit(soapy):
    # SoapySDR's built-in "null" device has no channels at all (SoapySDRUtil --probe).
    with pytest.raises(SinkError, match="cannot transmit"):
        open_sink("soapy:driver=null", sample_rate_hz=RATE_HZ, center_freq_hz=T1_HZ)


def test_receive_only_loopback_cannot_transmit(loopback, tmp_path):
    with pytest.raises(SinkError, match="cannot transmit"):
        real_sink(tmp_path, ",tx_channels=0")


def test_duty_cycle_refusal_before_the_real_device_sends(loopback, tmp_path):
    clock = FakeClock()
    limiter = DutyCycleLimiter(clock, sleep=clock.sleep)
    limiter.record(T1_HZ, 3.599)
    sink, out, log = real_sink(tmp_path, clock=clock, duty_cycle=limiter)
    with pytest.raises(DutyCycleError), sink:
        sink.write(t1_burst())
    assert out.stat().st_size == 0
    assert "activate" not in _log(log)


def test_plugin_path_environment_in_a_fresh_process(soapy, loopback_lib, tmp_path):
    """The documented way: SOAPY_SDR_PLUGIN_PATH set before SoapySDR loads modules."""
    out = tmp_path / "tx.cf32"
    code = (
        "import numpy as np\n"
        "from sdr.sink import open_sink\n"
        "from sdr.dutycycle import DutyCycleLimiter\n"
        f"with open_sink('soapy:driver={DRIVER},path={out}', sample_rate_hz=1e6,\n"
        "               center_freq_hz=868.95e6, sleep=lambda s: None,\n"
        "               duty_cycle=DutyCycleLimiter(enabled=False)) as sink:\n"
        "    sink.write(np.arange(10, dtype=np.complex64) * 0.1j)\n"
    )
    env = {**os.environ, "SOAPY_SDR_PLUGIN_PATH": str(loopback_lib.parent)}
    subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, check=True, capture_output=True
    )
    np.testing.assert_array_equal(
        np.fromfile(out, dtype="<c8"), np.arange(10, dtype=np.complex64) * 0.1j
    )
