"""RTL-SDR through pyrtlsdr's real Python API, with a file-backed librtlsdr of our own.

pyrtlsdr loads librtlsdr with ctypes when it is imported: from pyrtlsdrlib if that is
installed, else from a ``librtlsdr.so`` in a directory of ``LD_LIBRARY_PATH``.  The
fixture compiles tests/rtlsdr_stub/librtlsdr_stub.c (every function pyrtlsdr binds,
with librtlsdr's signatures and return codes, an R820T tuner, and a cu8 file in place
of USB) into such a directory, and imports pyrtlsdr with pyrtlsdrlib hidden for that
one import.  So pyrtlsdr's own open/configure/read_async/cancel code runs, and the
stub's log shows every call that reached "the dongle".

Skips, with the reason, when pyrtlsdr is not installed or there is no C compiler.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dsp.convert import bytes_to_iq
from sdr.source import open_source
from sdr.source_rtlsdr import RtlSdrSource, parse_rtlsdr_device
from stack.errors import SourceError

REPO = Path(__file__).resolve().parents[2]
STUB_SOURCE = REPO / "tests" / "rtlsdr_stub" / "librtlsdr_stub.c"
RATE_HZ = 1_600_000
FREQ_HZ = 868_950_000
WAIT_S = 5.0
# librtlsdr's buffer for each callback in our source, bytes (256 KiB).
BUFFER_BYTES = 1 << 18


@pytest.fixture(scope="session")
def stub_lib(tmp_path_factory) -> ctypes.CDLL:
    """The stub library, loaded by pyrtlsdr; skips if that cannot be arranged."""
    if importlib.util.find_spec("rtlsdr") is None:
        pytest.skip("pyrtlsdr is not installed: pip install 'wmbus-sdr[rtlsdr]'")
    compiler = shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to build the librtlsdr stand-in")
    out_dir = tmp_path_factory.mktemp("rtlsdr_stub")
    lib_path = out_dir / "librtlsdr.so"
    build = subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-Wall", "-o", str(lib_path),
         str(STUB_SOURCE)],
        capture_output=True, text=True,
    )  # fmt: skip
    if build.returncode:
        pytest.skip(f"the librtlsdr stand-in did not build: {build.stderr[-300:]}")
    if "rtlsdr" not in sys.modules:
        _import_pyrtlsdr_with(out_dir)
    rtlsdr = sys.modules["rtlsdr"]
    if not hasattr(rtlsdr.librtlsdr, "stub_reset"):
        pytest.skip("pyrtlsdr was imported with the real librtlsdr before this test")
    return rtlsdr.librtlsdr


def _import_pyrtlsdr_with(lib_dir: Path) -> None:
    """Import pyrtlsdr so that it loads ``lib_dir/librtlsdr.so``.

    ``sys.modules[name] = None`` makes ``import pyrtlsdrlib`` fail (Python's documented
    way), so pyrtlsdr falls back to LD_LIBRARY_PATH; both are restored afterwards.
    """
    saved_env = os.environ.get("LD_LIBRARY_PATH")
    saved_lib = sys.modules.get("pyrtlsdrlib", ...)
    os.environ["LD_LIBRARY_PATH"] = str(lib_dir)
    sys.modules["pyrtlsdrlib"] = None  # type: ignore[assignment]
    try:
        importlib.import_module("rtlsdr")
    finally:
        if saved_lib is ...:
            del sys.modules["pyrtlsdrlib"]
        else:
            sys.modules["pyrtlsdrlib"] = saved_lib
        if saved_env is None:
            del os.environ["LD_LIBRARY_PATH"]
        else:
            os.environ["LD_LIBRARY_PATH"] = saved_env


class Dongle:
    """Test-side controls of the stub: its input file and the calls it logged."""

    def __init__(self, lib: ctypes.CDLL, tmp_path: Path):
        self.lib = lib
        self.log_path = tmp_path / "stub.log"
        lib.stub_reset()
        lib.stub_set_log(str(self.log_path).encode())

    def play(self, path: Path) -> None:
        self.lib.stub_set_input(str(path).encode())

    def devices(self, serials: list[str]) -> None:
        self.lib.stub_set_devices(len(serials), ",".join(serials).encode())

    def log(self) -> list[str]:
        if not self.log_path.exists():
            return []
        return self.log_path.read_text().splitlines()


@pytest.fixture
def dongle(stub_lib, tmp_path) -> Dongle:
    return Dongle(stub_lib, tmp_path)


@pytest.fixture
def capture(tmp_path, rng) -> tuple[Path, bytes]:
    """0.2 s of cu8 noise (320 000 samples, 640 000 bytes: 2.4 USB buffers)."""
    data = rng.integers(0, 256, size=640_000, dtype=np.uint8).tobytes()
    path = tmp_path / "air.cu8"
    path.write_bytes(data)
    return path, data


def drain(source: RtlSdrSource) -> tuple[np.ndarray, SourceError | None]:
    blocks: list[np.ndarray] = []
    for _ in range(10_000):
        try:
            block = source.read()
        except SourceError as exc:
            return np.concatenate(blocks or [np.zeros(0, np.complex64)]), exc
        if not block.size:
            break
        blocks.append(block)
    return np.concatenate(blocks or [np.zeros(0, np.complex64)]), None


def open_dongle(spec: str = "rtlsdr", **options) -> RtlSdrSource:
    options = {"sample_rate_hz": RATE_HZ, "center_freq_hz": FREQ_HZ, **options}
    options.setdefault("timeout_s", WAIT_S)
    source = open_source(spec, **options)
    assert isinstance(source, RtlSdrSource)
    return source


# --- opening and configuring ----------------------------------------------------------


def test_settings_reach_the_dongle_and_samples_arrive_unchanged(dongle, capture):
    path, data = capture
    dongle.play(path)
    source = open_dongle(gain_db=40, ppm=-3, agc=True, bias_tee=True)
    iq, error = drain(source)
    source.close()
    np.testing.assert_array_equal(iq, bytes_to_iq(data, "cu8"))
    # At the end of the file the stub's read_async returns LIBUSB_ERROR_NO_DEVICE.
    assert "the dongle has gone" in str(error)
    assert dongle.log() == [
        "open 0",
        # pyrtlsdr's own defaults when it opens a device:
        "rate 1024000",
        "freq 80000000",
        "gain_mode 0",
        # ours:
        f"rate {RATE_HZ}",
        f"freq {FREQ_HZ}",
        "ppm -3",
        "gain_mode 1",
        "gain 402",  # the R820T step nearest 40 dB
        "agc 1",
        "bias_tee 1",
        f"read_async 0 {BUFFER_BYTES}",
        f"ended {len(data)}",
        "close",
    ]
    assert (source.serial, source.tuner_name, source.gain_tenth_db) == (
        "00000001",
        "R820T",
        402,
    )


def test_auto_gain_and_no_ppm(dongle, capture):
    dongle.play(capture[0])
    dongle.lib.stub_set_pace(50_000)  # 50 ms per buffer: still reading at close()
    source = open_dongle(gain_db="auto", ppm=0)
    source.close()
    log = dongle.log()
    assert log[4:7] == [f"rate {RATE_HZ}", f"freq {FREQ_HZ}", "gain_mode 0"]
    # close() came before the reader started, or it stopped the read.
    tail = [line.split()[0] for line in log[7:]]
    assert tail in (["close"], ["read_async", "cancelled", "close"]), log
    assert source.gain_tenth_db is None


@pytest.mark.parametrize(
    ("spec", "index"),
    [("rtlsdr", 0), ("rtlsdr:2", 2), ("rtlsdr:BBB", 1), ("rtlsdr:serial=00000007", 2)],
)
def test_choose_the_dongle_by_index_or_serial(dongle, capture, spec, index):
    dongle.devices(["AAA", "BBB", "00000007"])
    dongle.play(capture[0])
    with open_dongle(spec) as source:
        assert source.device_index == index
    assert dongle.log()[0] == f"open {index}"


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("rtlsdr:3", "no dongle 3; found 0: serial AAA, 1: serial 00000007"),
        ("rtlsdr:CCC", "no dongle with serial 'CCC'; found 0: serial AAA"),
        ("rtlsdr:0007", "no dongle with serial '0007'"),  # leading zero: a serial
    ],
)
def test_no_such_dongle(dongle, spec, message):
    dongle.devices(["AAA", "00000007"])
    with pytest.raises(SourceError, match=message):
        open_dongle(spec)
    assert dongle.log() == []


def test_no_dongle_at_all(dongle):
    dongle.devices([])
    with pytest.raises(SourceError, match="no RTL-SDR found"):
        open_dongle()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (-6, "rtlsdr:0: cannot open: the dongle is busy: another program or the DVB"),
        (-3, "rtlsdr:0: cannot open: permission denied"),
    ],
)
def test_busy_or_forbidden_dongle(dongle, code, message):
    dongle.lib.stub_set_open_error(code)
    with pytest.raises(SourceError, match=message):
        open_dongle()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate_hz": 600e3}, "600000 S/s not supported by the RTL2832U"),
        ({"center_freq_hz": 2.4e9}, "R820T tuner cannot tune to 2400 MHz"),
        ({"gain_db": 70}, r"gain 70 dB outside the tuner's 0..49.6 dB"),
        ({"gain_db": "max"}, "gain must be a number of dB or 'auto'"),
    ],
)
def test_invalid_settings_are_one_clear_error_and_release_the_dongle(
    dongle, capture, options, message
):
    dongle.play(capture[0])
    with pytest.raises(SourceError, match=message) as info:
        open_dongle(**options)
    assert "\n" not in str(info.value)
    log = dongle.log()
    assert not log or log[-1] == "close"  # opened only if the check needs the tuner
    assert not any(line.startswith("read_async") for line in log)


def test_parse_device():
    assert parse_rtlsdr_device("") == 0
    assert parse_rtlsdr_device("12") == 12
    assert parse_rtlsdr_device("00000001") == "00000001"
    assert parse_rtlsdr_device("serial=12") == "12"
    with pytest.raises(SourceError):
        parse_rtlsdr_device("serial=")


# --- streaming ------------------------------------------------------------------------


def test_unplugged_mid_stream(dongle, capture):
    path, data = capture
    dongle.play(path)
    dongle.lib.stub_set_end(-4, ctypes.c_longlong(300_000))
    source = open_dongle()
    iq, error = drain(source)
    source.close()
    np.testing.assert_array_equal(iq, bytes_to_iq(data[:300_000], "cu8"))
    assert str(error) == "rtlsdr:0: reading failed: the dongle has gone (unplugged?)"


def test_read_async_returning_by_itself_means_the_dongle_is_gone(dongle, capture):
    dongle.play(capture[0])
    dongle.lib.stub_set_end(0, ctypes.c_longlong(-1))
    source = open_dongle()
    _, error = drain(source)
    source.close()
    assert "stopped delivering samples (unplugged?)" in str(error)


def test_reconnect_reopens_the_dongle_with_the_same_settings(dongle, capture):
    path, data = capture
    dongle.play(path)
    dongle.lib.stub_set_end(-4, ctypes.c_longlong(100_000))
    dongle.lib.stub_set_unplug_after(2)  # then it is gone for good
    source = open_dongle(gain_db=20, reconnect=True, max_reconnects=1)
    iq, error = drain(source)
    source.close()
    part = bytes_to_iq(data[:100_000], "cu8")
    np.testing.assert_array_equal(iq, np.concatenate([part, part]))
    assert source.reconnects == 1
    assert "no RTL-SDR found" in str(error)
    assert "gave up after 1 reconnect attempts" in str(error)
    log = dongle.log()
    assert log.count("open 0") == 2 and log.count("gain 197") == 2
    assert log[-1] == "close"


def test_slow_consumer_overruns_are_counted_not_blocking(dongle, tmp_path):
    # 24 USB buffers (6 MiB) delivered as fast as the stub can, into a 2-block queue.
    data = np.arange(3 * 2**21, dtype=np.uint32).astype(np.uint8).tobytes()
    path = tmp_path / "long.cu8"
    path.write_bytes(data)
    dongle.play(path)
    source = open_dongle(queue_blocks=2)
    source._thread.join(WAIT_S)  # the reader never waited for us
    assert not source._thread.is_alive()
    iq, error = drain(source)
    source.close()
    assert "gone" in str(error)
    assert source.drop_events > 0
    assert iq.size + source.dropped_samples == len(data) // 2
    # Whole buffers were dropped: what arrived is made of whole, unchanged buffers.
    per_buffer = BUFFER_BYTES // 2
    assert iq.size % per_buffer == 0 and source.dropped_samples % per_buffer == 0


def test_close_while_streaming_cancels_the_read(dongle, tmp_path):
    path = tmp_path / "long.cu8"
    path.write_bytes(bytes(range(256)) * 20_000)
    dongle.play(path)
    dongle.lib.stub_set_pace(20_000)  # 20 ms per buffer: still streaming at close()
    source = open_dongle()
    assert source.read().size
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 1.0
    assert not source._thread.is_alive()
    log = dongle.log()
    assert log[-2].startswith("cancelled") and log[-1] == "close"


# --- without pyrtlsdr -----------------------------------------------------------------


def test_missing_pyrtlsdr_names_the_install_command():
    code = (
        "import sys; sys.modules['rtlsdr'] = None\n"
        "from sdr.source import open_source\n"
        "from stack.errors import SourceError\n"
        "try:\n"
        "    open_source('rtlsdr:0')\n"
        "except SourceError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "pip install 'wmbus-sdr[rtlsdr]'" in done.stdout


def test_importing_the_module_does_not_import_pyrtlsdr():
    code = "import sys, sdr.source_rtlsdr; print('rtlsdr' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert done.stdout.strip() == "False", done.stderr
