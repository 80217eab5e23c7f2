"""``wmbus serve`` end to end through real loopback sockets: our rtl_tcp client gets the
recording sample for sample, the server logs what clients ask, survives clients that
come and go, stops cleanly, and an independent client (Debian's rtl_433) decodes a T1
telegram we rendered with ``sdr.transmit``.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from dsp.convert import bytes_to_iq, iq_to_bytes
from sdr.cli import main
from sdr.rtltcp_server import RtlTcpServer
from sdr.source_file import FileSource
from sdr.source_rtltcp import RtlTcpSource
from sdr.transmit import TxFrame, render
from stack.errors import SourceError

REPO = Path(__file__).resolve().parents[2]
LOOPBACK = "127.0.0.1"
RATE_HZ = 1_600_000
FREQ_HZ = 868_950_000
WAIT_S = 10.0
RTL_433 = shutil.which("rtl_433")


def made_up_t1() -> bytes:
    """A plain T1 telegram of our own (L C M A, CI 7A short header, some records)."""
    body = bytes.fromhex(
        "44 9315 21436587 01 07 7a 2a 00 0000 0c13 99887766 02fd17 0000"
    )
    return bytes([len(body)]) + body


def write_cu8(path: Path, iq: np.ndarray) -> bytes:
    data = iq_to_bytes(iq, "cu8")
    path.write_bytes(data)
    return data


@pytest.fixture
def recording(tmp_path, rng) -> Path:
    """0.05 s of noise at 1.6 MS/s as cu8, named the rtl_433 way (rate and centre)."""
    iq = (rng.normal(size=80_000) + 1j * rng.normal(size=80_000)) * 0.3
    path = tmp_path / f"noise_{FREQ_HZ / 1e6:g}M_1600k.cu8"
    write_cu8(path, iq.astype(np.complex64))
    return path


class Running:
    """An RtlTcpServer serving on its own thread (port chosen by the system)."""

    def __init__(self, path: Path, **options):
        self.server = RtlTcpServer(path, host=LOOPBACK, port=0, **options)
        self.port = self.server.address[1]
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


def read_all(source: RtlTcpSource, limit: int | None = None) -> np.ndarray:
    blocks, total = [], 0
    while (block := source.read()).size:
        blocks.append(block)
        total += block.size
        if limit is not None and total >= limit:
            break
    return np.concatenate(blocks)


def connect(port: int, **options) -> RtlTcpSource:
    options = {"sample_rate_hz": RATE_HZ, "center_freq_hz": FREQ_HZ, **options}
    return RtlTcpSource(LOOPBACK, port, end_on_close=True, timeout_s=WAIT_S, **options)


def test_a_cu8_recording_arrives_sample_for_sample(recording):
    running = Running(recording)
    with connect(running.port, gain_db=20) as source:
        got = read_all(source)
        assert source.header == (5, 29)  # an R820T and its 29 gain steps
    with FileSource(recording) as original:
        np.testing.assert_array_equal(got, original.read(10**6))
    np.testing.assert_array_equal(got, bytes_to_iq(recording.read_bytes(), "cu8"))
    running.stop()
    # The server decoded the client's commands as the client meant them.
    assert running.server.commands == source.sent_commands
    assert running.server.clients_served == 1
    assert running.server.samples_sent == got.size


def test_other_formats_are_sent_as_cu8(tmp_path, rng):
    iq = ((rng.normal(size=3001) + 1j * rng.normal(size=3001)) * 0.2).astype(
        np.complex64
    )
    path = tmp_path / "burst.cf32"
    iq.tofile(path)
    running = Running(path, sample_rate_hz=RATE_HZ, center_freq_hz=FREQ_HZ)
    with connect(running.port) as source:
        got = read_all(source)
    running.stop()
    # Exactly what cu8 quantisation of the cf32 samples gives.
    np.testing.assert_array_equal(got, bytes_to_iq(iq_to_bytes(iq, "cu8"), "cu8"))


def test_clients_one_after_another_each_get_the_whole_file(recording):
    running = Running(recording)
    expected = bytes_to_iq(recording.read_bytes(), "cu8")
    for _ in range(2):
        with connect(running.port) as source:
            np.testing.assert_array_equal(read_all(source), expected)
    # A client that leaves early does not stop the server either.
    with connect(running.port) as source:
        assert source.read(100).size == 100
    with connect(running.port) as source:
        np.testing.assert_array_equal(read_all(source), expected)
    running.stop()
    assert running.server.clients_served == 4


def test_loop_repeats_the_recording(recording):
    running = Running(recording, loop=True)
    expected = bytes_to_iq(recording.read_bytes(), "cu8")
    with connect(running.port) as source:
        got = read_all(source, limit=2 * expected.size + 1)
    running.stop()
    np.testing.assert_array_equal(got[: 2 * expected.size], np.tile(expected, 2))


def test_realtime_paces_at_the_sample_rate(recording):
    # 80 000 samples at 1.6 MS/s: 50 ms of signal may not arrive in much less.
    running = Running(recording, realtime=True)
    started = time.monotonic()
    with connect(running.port) as source:
        got = read_all(source)
    elapsed_s = time.monotonic() - started
    running.stop()
    assert got.size == 80_000
    assert elapsed_s >= 0.045


def test_commands_are_logged_and_a_mismatch_is_only_a_warning(recording, caplog):
    running = Running(recording)
    with caplog.at_level(logging.INFO, logger="sdr.rtltcp_server"):
        with connect(
            running.port, center_freq_hz=868.3e6, sample_rate_hz=2.4e6, ppm=-2
        ) as source:
            got = read_all(source)  # the samples come anyway
        running.stop()
    assert got.size == 80_000
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("tunes to 868.3MHz; the recording is centred on 868.95MHz" in w
               for w in warnings)  # fmt: skip
    assert any("asks for 2400k S/s; the recording has 1600k S/s" in w for w in warnings)
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert "command frequency correction = -2" in infos


def test_shutdown_with_a_client_connected_is_prompt(recording):
    running = Running(recording, realtime=True, loop=True)
    source = connect(running.port)
    assert source.read(1000).size
    started = time.monotonic()
    running.stop()
    assert time.monotonic() - started < 2.0
    source.close()


def test_bad_file_and_busy_port(recording, tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        RtlTcpServer(tmp_path / "missing.cu8", port=0)
    with pytest.raises(SourceError, match="cannot infer the sample rate"):
        (tmp_path / "plain.cu8").write_bytes(bytes(100))
        RtlTcpServer(tmp_path / "plain.cu8", port=0)
    running = Running(recording)
    with pytest.raises(SourceError, match=f"cannot listen on 127.0.0.1:{running.port}"):
        RtlTcpServer(recording, port=running.port)
    running.stop()


# --- the command line -----------------------------------------------------------------


def start_cli(*args: str) -> tuple[subprocess.Popen, int]:
    """``wmbus serve`` in a child process; returns it and the port it listens on."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sdr.cli", "serve", *args, "--port", "0"],
        cwd=REPO,
        stderr=subprocess.PIPE,
        text=True,
        # A shell without job control starts background jobs with SIGINT ignored,
        # which the child would inherit: give it the default, as a terminal does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
    assert match, f"unexpected first line: {line!r}"
    return proc, int(match[1])


def test_cli_serves_once_and_exits(recording):
    proc, port = start_cli(str(recording), "--once")
    with connect(port) as source:
        got = read_all(source)
    _, err = proc.communicate(timeout=WAIT_S)
    assert proc.returncode == 0
    assert got.size == 80_000
    assert "stopped; 1 client(s), 80000 samples sent" in err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_stops_cleanly_on_ctrl_c_or_sigterm(recording, signum):
    proc, port = start_cli(str(recording), "--loop", "--realtime")
    source = connect(port)
    assert source.read(1000).size
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=WAIT_S)
    source.close()
    assert proc.returncode == 0
    assert "wmbus serve: stopped;" in err
    assert "Traceback" not in err


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing.cu8"), "--port", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such file" in err[0]
    with pytest.raises(SystemExit) as info:
        main(["serve", str(tmp_path / "x.cu8"), "--port", "70000"])
    assert info.value.code == 2


# --- an independent client ------------------------------------------------------------


@pytest.mark.skipif(RTL_433 is None, reason="rtl_433 is not on PATH (Debian rtl-433)")
def test_rtl433_decodes_a_t1_telegram_from_wmbus_serve(tmp_path):
    telegram = made_up_t1()
    iq, _ = render(
        [TxFrame(telegram, "T1", carrier_offset_hz=15e3)],
        sample_rate_hz=RATE_HZ,
        center_freq_hz=FREQ_HZ,
        lead_s=0.02,
        tail_s=0.02,
        ebn0_db=35.0,  # rtl_433 has no channel filter (tests/test_rtl433_oracle.py)
        seed=11,
    )
    path = tmp_path / "t1_868.95M_1600k.cu8"
    write_cu8(path, iq * 0.5)  # headroom: the noise must not clip
    proc, port = start_cli(str(path), "--once")
    # The flags that work for T1 (tests/test_rtl433_oracle.py): minmax at 1.6 MS/s.
    done = subprocess.run(
        [RTL_433, "-c", "/dev/null", "-d", f"rtl_tcp:{LOOPBACK}:{port}",
         "-s", "1.6M", "-f", "868.95M", "-R", "104", "-Y", "minmax",
         "-F", "json", "-T", "5"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    proc.communicate(timeout=WAIT_S)
    reports = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    reports = [r for r in reports if r.get("model") == "Wireless-MBus"]
    assert len(reports) == 1, done.stderr
    report = reports[0]
    assert (report["mode"], report["M"], report["id"]) == ("T", "ELS", 87654321)
    assert report["mic"] == "CRC"
    # rtl_433 prints L - 2, the bytes after L, then the last block's CRC (frame A).
    assert bytes.fromhex(report["data"])[1 : len(telegram)] == telegram[1:]
    assert proc.returncode == 0
