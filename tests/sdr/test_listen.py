"""``wmbus listen`` end to end: rtl_tcp through real loopback sockets, standard input,
signals, sources that stop, bad input; and the session's pieces with a stand-in
receiver.

The truth for what listening decodes is ``wmbus replay`` on the same recording (its
own tests hold it to the recording's SigMF annotations): listening through
``wmbus serve``'s server, or from the recording's cu8 bytes on standard input, must
give the same telegrams, modes, frame formats, values and sample indices; only the
wall-clock times differ.
"""

from __future__ import annotations

import io
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sdr.cli import build_parser, main
from sdr.cli_listen import listen
from sdr.cliutil import UsageError
from sdr.listen_session import StopControl, meter_matches, parse_meter_ids
from sdr.rtltcp_server import RtlTcpServer
from sdr.source_file import FileSource
from sdr.source_rtltcp import build_header
from stack.errors import SourceError
from stack.frame import add_crcs
from tests.mosquitto import (  # noqa: F401 (fixtures)
    PASSWORD,
    USER,
    Subscriber,
    free_port,
    mosquitto_fixture,
    paho_fixture,
)
from tests.sdr.test_output_rx import wmbusmeters_reads
from tests.sdr.test_pipeline import FakeFrame, frame_for, scripted, telegram

REPO = Path(__file__).resolve().parents[2]
RECORDINGS = REPO / "recordings"
META = RECORDINGS / "multimode_868.95M_2400k.sigmf-meta"
DATA = RECORDINGS / "multimode_868.95M_2400k.sigmf-data"
KEYS = RECORDINGS / "keys.txt"
LOOPBACK = "127.0.0.1"
WAIT_S = 20.0
# Keys of a jsonl line that depend on when it was received, not on what.
_CLOCK_KEYS = ("timestamp",)


# -- helpers ---------------------------------------------------------------------------


class Serving:
    """An RtlTcpServer on its own thread, on a port the system chose."""

    def __init__(self, path: Path = META, **options):
        self.server = RtlTcpServer(path, host=LOOPBACK, port=0, **options)
        self.port = self.server.address[1]
        self.device = f"rtltcp:{LOOPBACK}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(WAIT_S)
        assert not self.thread.is_alive()


@pytest.fixture
def serving():
    running = []

    def start(path: Path = META, **options) -> Serving:
        running.append(Serving(path, **options))
        return running[-1]

    yield start
    for server in running:
        server.stop()


@pytest.fixture(scope="module")
def receiver_module():
    return pytest.importorskip("dsp.receiver", reason="dsp/receiver.py not written yet")


def _main(capsys, argv):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def _replay(capsys, *flags) -> str:
    status, out, err = _main(capsys, ["replay", str(META), "--keys", str(KEYS), *flags])
    assert status == 0, err
    return out


def _records(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def _without_clock(records: list[dict]) -> list[dict]:
    """The records in stream order, without the keys that depend on the wall clock."""
    stripped = [{k: v for k, v in r.items() if k not in _CLOCK_KEYS} for r in records]
    return sorted(stripped, key=lambda r: (r["sample"], r["mode"], r["telegram"]))


def _recording_samples() -> int:
    with FileSource(META) as source:
        assert source.n_samples is not None
        return source.n_samples


def _assert_recent(stamp: datetime, before_s: float) -> None:
    """A wall-clock stamp from this run: after it started, not after now."""
    assert before_s - 1.0 <= stamp.timestamp() <= time.time() + 1.0, stamp


def _one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wmbus: ") and "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


# -- rtl_tcp end to end: the same telegrams as replay --------------------------------


def test_rtltcp_jsonl_equals_replay(receiver_module, serving, capsys):
    expected = _records(_replay(capsys, "--output", "jsonl"))
    server = serving()
    before_s = time.time()
    argv = ["listen", "--device", server.device, "--keys", str(KEYS)]
    status, out, err = _main(capsys, [*argv, "--output", "jsonl"])
    # The recording ends, so the server hangs up: every frame is out, then the
    # counts, then one line saying what happened; exit 1 (a live source failed).
    assert status == 1
    got = _records(out)
    assert _without_clock(got) == _without_clock(expected)
    for record in got:  # times from the wall clock of this run
        _assert_recent(datetime.fromisoformat(record["timestamp"]), before_s)
    lines = err.strip().splitlines()
    n_samples = _recording_samples()
    assert lines[-3].startswith("wmbus: 10 telegrams (10 decoded, 0 no key")
    assert f": {n_samples} samples, 0 dropped" in lines[-2]
    assert lines[-1] == (
        f"wmbus: {server.device}: the server closed the connection after "
        f"{n_samples} samples"
    )
    assert "Traceback" not in err


def test_rtltcp_rtlwmbus_equals_replay(receiver_module, serving, capsys):
    expected = _replay(capsys, "--output", "rtlwmbus").splitlines()
    server = serving()
    before_s = time.time()
    argv = ["listen", "--device", server.device, "--keys", str(KEYS)]
    status, out, _ = _main(capsys, [*argv, "--output", "rtlwmbus"])
    assert status == 1
    got = out.splitlines()
    assert out.endswith("\n") and len(got) == len(expected) == 8  # no T2, no C2

    def fields_but_time(line: str) -> list[str]:
        fields = line.split(";")
        return fields[:3] + fields[4:]

    assert sorted(map(fields_but_time, got)) == sorted(map(fields_but_time, expected))
    for line in got:  # what wmbusmeters takes from each line
        rssi, stamp, payload = wmbusmeters_reads(line + "\n")
        _assert_recent(stamp.replace(tzinfo=UTC), before_s)
        assert payload.hex() == line.rsplit(";0x", 1)[1]


def test_rtltcp_sends_the_settings_asked_for(receiver_module, serving, capsys):
    server = serving()
    argv = ["listen", "--device", server.device, "--output", "jsonl"]
    status, _, _ = _main(
        capsys, [*argv, "--freq", "868.95M", "--gain", "20", "--ppm", "-3"]
    )
    assert status == 1
    # rate, frequency, correction (two's complement), manual gain of 19.7 dB
    # (the R820T's step nearest to 20 dB), bias tee left alone
    assert server.server.commands == [
        (0x02, 2_400_000),
        (0x01, 868_950_000),
        (0x05, (-3) & 0xFFFFFFFF),
        (0x03, 1),
        (0x04, 197),
    ]


def test_reconnect_and_duration(receiver_module, serving, capsys):
    server = serving()
    argv = ["listen", "--device", server.device, "--output", "jsonl"]
    status, out, err = _main(capsys, [*argv, "--reconnect", "--duration", "3"])
    # The server hangs up after each pass; --reconnect comes back for the next.
    assert status == 0, err
    telegrams = [r["telegram"] for r in _records(out)]
    assert len(telegrams) >= 20 and len(set(telegrams)) <= 10
    assert server.server.clients_served >= 2
    assert "stopped at the end of --duration after 3." in err


# -- standard input -----------------------------------------------------------------


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))


def test_stdin_cu8_equals_replay(receiver_module, capsys, monkeypatch):
    expected = _records(_replay(capsys, "--output", "jsonl"))
    _stdin(monkeypatch, DATA.read_bytes())
    before_s = time.time()
    argv = ["listen", "--device", "-", "--keys", str(KEYS), "--output", "jsonl"]
    status, out, err = _main(capsys, argv)
    assert status == 0, err
    got = _records(out)
    assert _without_clock(got) == _without_clock(expected)
    for record in got:
        _assert_recent(datetime.fromisoformat(record["timestamp"]), before_s)
    assert "wmbus: end of standard input after" in err
    assert f": {_recording_samples()} samples, 0 dropped" in err


def test_meters_filter(receiver_module, capsys, monkeypatch):
    everything = _records(_replay(capsys, "--output", "jsonl"))
    _stdin(monkeypatch, DATA.read_bytes())
    argv = ["listen", "--device", "-", "--keys", str(KEYS), "--output", "jsonl"]
    status, out, err = _main(capsys, [*argv, "--meters", "20261103,20261105"])
    assert status == 0, err
    wanted = [r for r in everything if r["id"] in ("20261103", "20261105")]
    assert 0 < len(wanted) < len(everything)
    assert _without_clock(_records(out)) == _without_clock(wanted)
    # The counters still count every frame; the filter only chooses what is shown.
    assert "10 telegrams (10 decoded" in err
    assert f"{len(wanted)} frames of the --meters written" in err


def test_stdin_end_inside_a_sample(capsys, monkeypatch):
    _stdin(monkeypatch, bytes(2001))
    status, out, err = _main(capsys, ["listen", "--device", "-"])
    assert status == 1 and out == ""
    lines = err.strip().splitlines()
    assert "1000 samples" in lines[-2]
    assert "truncated: 1 byte(s) after the last complete sample" in lines[-1]


# -- stopping: signals, a source that stops -------------------------------------------


def _start_listen(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "sdr.cli", "listen", *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Without job control a background child starts with SIGINT ignored; give
        # it the default, as a terminal does.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_mid_stream_stops_cleanly(receiver_module, serving, signum):
    server = serving(realtime=True, loop=True)
    proc = _start_listen(
        "--device", server.device, "--keys", str(KEYS), "--output", "jsonl"
    )
    assert proc.stdout is not None
    watchdog = threading.Timer(2 * WAIT_S, proc.kill)  # a hung child fails, not hangs
    watchdog.start()
    try:
        first = [proc.stdout.readline() for _ in range(12)]  # more than one pass
        proc.send_signal(signum)
        # Read on through the text buffer: readline() may have taken lines beyond the
        # twelfth into it, which communicate() (reading the pipe itself) would skip.
        rest = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=WAIT_S)
    finally:
        watchdog.cancel()
    assert proc.returncode == 0, err
    lines = first + rest.splitlines(keepends=True)
    # Every line came out whole and flushed, none cut off by the stop.
    assert all(line.endswith("\n") for line in lines)
    records = [json.loads(line) for line in lines]
    assert len(records) >= 12 and all(r["error"] is None for r in records)
    name = signal.Signals(signum).name
    summary = err.strip().splitlines()[-2:]
    assert summary[0].startswith(f"wmbus: {len(records)} telegrams (")
    match = re.fullmatch(
        rf"wmbus: stopped by {name} after [\d.]+ s: (\d+) samples, (\d+) dropped",
        summary[1],
    )
    assert match, summary
    assert int(match[1]) > _recording_samples()
    assert "Traceback" not in err


def _serve_part(listener: socket.socket, data: bytes) -> None:
    conn, _ = listener.accept()
    with conn:
        conn.sendall(build_header(5, 29) + data)
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(WAIT_S)
        while conn.recv(1024):  # until the client leaves (it reads all first)
            pass


def test_source_that_stops_mid_stream(receiver_module, capsys):
    """A server that hangs up halfway: the first half's telegrams, counts, one line."""
    data = DATA.read_bytes()
    n_half = len(data) // 4  # samples in the first half (2 bytes each)
    listener = socket.create_server((LOOPBACK, 0))
    port = listener.getsockname()[1]
    thread = threading.Thread(target=_serve_part, args=(listener, data[: 2 * n_half]))
    thread.start()
    try:
        argv = ["listen", "--device", f"rtltcp:{LOOPBACK}:{port}", "--output", "jsonl"]
        status, out, err = _main(capsys, [*argv, "--keys", str(KEYS)])
    finally:
        thread.join(WAIT_S)
        listener.close()
    assert status == 1
    records = _records(out)
    with FileSource(META) as source:
        ends = [a.last_sample for a in source.annotations]
    assert 0 < len(records) <= sum(end < n_half for end in ends) + 1
    assert all(r["sample"] < n_half for r in records)
    lines = err.strip().splitlines()
    assert lines[-3].startswith(f"wmbus: {len(records)} telegrams")
    assert "failed after" in lines[-2] and f": {n_half} samples" in lines[-2]
    assert lines[-1].endswith(f"closed the connection after {n_half} samples")


# -- bad input: one line, non-zero exit --------------------------------------------


def test_refused_connection_is_one_line(capsys):
    port = free_port()
    status, out, err = _main(
        capsys, ["listen", "--device", f"rtltcp:{LOOPBACK}:{port}"]
    )
    assert status == 1 and out == ""
    _one_line_error(err, "connection refused", str(port))


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--freq", "868.95X"], "--freq"),
        (["--rate", "fast"], "--rate"),
        (["--gain", "loud"], "--gain"),
        (["--modes", "T,Q"], "--modes"),
        (["--meters", "123"], "--meters"),
        (["--meters", "1234567g"], "--meters"),
        (["--duration", "0"], "--duration"),
        (["--device", "loopback"], "--device"),
    ],
)
def test_flags_that_do_not_parse_are_usage_errors(capsys, flags, needle):
    with pytest.raises(SystemExit) as exc:
        main(["listen", "--device", f"rtltcp:{LOOPBACK}:1", *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--freq", "5G"], "cannot tune to 5e+09 Hz"),
        (["--rate", "5M"], "not supported by the RTL2832U"),
        (["--gain", "99"], "gain 99 dB outside the tuner's"),
    ],
)
def test_values_the_radio_refuses_are_one_line(serving, capsys, flags, needle):
    server = serving()
    status, out, err = _main(capsys, ["listen", "--device", server.device, *flags])
    assert status == 1 and out == ""
    _one_line_error(err, needle)


def test_unknown_backend_is_one_line(capsys):
    status, _, err = _main(capsys, ["listen", "--device", "hackrf:0"])
    assert status == 1
    _one_line_error(err, "unknown backend 'hackrf'")


def test_broker_url_that_does_not_parse_is_one_line(capsys):
    port = free_port()  # never reached: the URL is refused first
    argv = ["listen", "--device", f"rtltcp:{LOOPBACK}:{port}", "--mqtt", "http://x"]
    status, _, err = _main(capsys, argv)
    assert status == 1
    _one_line_error(err, "bad MQTT URL")


def test_wrong_broker_credentials_are_one_line(serving, mosquitto, capsys):
    server = serving()
    url = mosquitto.url("ls", auth=f"{USER}:not-{PASSWORD}")
    argv = ["listen", "--device", server.device, "--mqtt", url]
    status, out, err = _main(capsys, argv)
    assert status == 1 and out == ""
    _one_line_error(err)
    assert server.server.clients_served == 0  # the radio was never opened


def test_listen_publishes_to_mqtt(receiver_module, mosquitto, capsys, monkeypatch):
    _stdin(monkeypatch, DATA.read_bytes())
    subscriber = Subscriber(mosquitto.port, "ls/#")
    try:
        argv = ["listen", "--device", "-", "--keys", str(KEYS), "--output", "jsonl"]
        status, out, err = _main(
            capsys, [*argv, "--mqtt", mosquitto.url("ls"), "--mqtt-id", "gw-listen"]
        )
        assert status == 0, err
        got = subscriber.wait_for(10, "/2026")
    finally:
        subscriber.close()
    assert "MQTT 10 published, 0 dropped" in err
    printed = sorted(json.loads(line)["telegram"] for line in out.splitlines())
    assert sorted(m.payload["telegram"] for m in got) == printed
    assert {m.payload["receiver"] for m in got} == {"gw-listen"}


# -- with a stand-in receiver: the session's own logic -------------------------------


def _listen_stub(script, argv, stdin: bytes, monkeypatch, stdout=None):
    _stdin(monkeypatch, stdin)
    args = build_parser().parse_args(["listen", "--device", "-", *argv])
    out, err = stdout or io.StringIO(), io.StringIO()
    status = listen(args, stdout=out, stderr=err, receiver_factory=scripted(script))
    return status, out.getvalue(), err.getvalue()


_RATE_HZ = 2.4e6


def _script():
    """Made-up meters: two plain ones, one behind a long header, one bad CRC."""
    behind = telegram(
        meter_id="11112222", ci=0x72, tpl_address=("ABC", "99990001", 1, 7)
    )
    bad = bytearray(add_crcs(telegram(meter_id="55556666"), "A"))
    bad[13] ^= 0x01
    return [
        (100, frame_for(telegram(meter_id="12345678"), "T", sample_index=10)),
        (300, frame_for(behind, "C", sample_index=200, time_s=200 / _RATE_HZ)),
        (500, FakeFrame(bytes(bad), "T", crc_ok=False, sample_index=400)),
        (700, frame_for(telegram(meter_id="87654321"), "S", sample_index=600)),
    ]


def test_stand_in_text_output_with_clock_of_stdin(monkeypatch):
    before = datetime.now(UTC).replace(microsecond=0)
    status, out, err = _listen_stub(_script(), [], bytes(2000), monkeypatch)
    assert status == 0, err
    lines = out.splitlines()
    assert len(lines) == 3  # the bad CRC is counted, not shown (no --all)
    assert "XYZ 12345678" in lines[0] and "XYZ 87654321" in lines[2]
    for line in lines:  # standard input: the clock starts when listening starts
        stamp = datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
        assert stamp.replace(tzinfo=UTC) >= before
    assert "3 telegrams (3 decoded" in err and "1 CRC failed" in err


@pytest.mark.parametrize(
    ("meters", "expected_ids"),
    [
        ("12345678", ["12345678"]),
        ("99990001", ["11112222"]),  # the meter behind the long header
        ("8765*", ["87654321"]),
        ("55556666", ["55556666"]),  # a bad CRC (with --all): its A-field
        ("1234567F", []),
    ],
)
def test_stand_in_meters_filter(monkeypatch, meters, expected_ids):
    argv = ["--output", "jsonl", "--all", "--meters", meters]
    status, out, _ = _listen_stub(_script(), argv, bytes(2000), monkeypatch)
    assert status == 0
    shown = [
        # a frame with bad CRCs has no decoded id: its A-field, little-endian
        r["id"] if "id" in r else bytes.fromhex(r["telegram"][8:16])[::-1].hex()
        for r in _records(out)
    ]
    assert shown == expected_ids


def test_stand_in_table_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setenv("COLUMNS", "200")  # rich's width of a terminal
    status, out, err = _listen_stub(
        _script(), [], bytes(2000), monkeypatch, stdout=Terminal()
    )
    assert status == 0, err
    assert "meters heard" in out
    for meter_id in ("12345678", "11112222", "87654321"):
        assert meter_id in out
    assert "volume 12345.678 m3" in out
    assert '"telegram"' not in out and "XYZ 12345678 " not in out  # no lines
    assert "3 telegrams" in err


def test_parse_meter_ids():
    assert parse_meter_ids(None) is None
    assert parse_meter_ids(" 1234ABCD, 42* ,") == ("1234abcd", "42*")
    for bad in ("", ",", "123", "123456789", "12*4", "xyz12345"):
        with pytest.raises(UsageError):
            parse_meter_ids(bad)


def test_meter_matches_prefix_and_exact():
    from sdr.reception import decode_frame

    reception = decode_frame(frame_for(telegram(meter_id="12345678"), "T"))
    assert meter_matches(reception, None)
    assert meter_matches(reception, ("12345678",))
    assert meter_matches(reception, ("1234*",)) and meter_matches(reception, ("*",))
    assert not meter_matches(reception, ("12345679", "2*"))


def test_stop_control_duration_ends_the_blocks():
    class Endless:
        samples_read = 0

        def read(self):
            import numpy as np

            time.sleep(0.01)
            return np.zeros(10, dtype=np.complex64)

    started = time.monotonic()
    with StopControl(0.2) as stop:
        n_blocks = sum(1 for _ in stop.blocks(Endless()))
    elapsed_s = time.monotonic() - started
    assert stop.reason == "--duration"
    assert n_blocks >= 1 and 0.15 <= elapsed_s < 5.0
    # The handlers are given back: SIGINT is Python's again.
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_stop_control_leaves_a_wait_at_once():
    """A signal during a read that would block for long ends it."""

    class Stuck:
        def read(self):
            time.sleep(30)
            raise AssertionError("not interrupted")

    started = time.monotonic()
    with StopControl() as stop:
        signal.setitimer(signal.ITIMER_REAL, 0.1)  # SIGALRM, as --duration sends
        assert list(stop.blocks(Stuck())) == []
    assert time.monotonic() - started < 5.0
    assert stop.reason == "--duration"


def test_source_error_is_re_raised_after_the_counts(monkeypatch):
    """In-process: ``listen`` raises the source's error; main makes it one line."""
    _stdin(monkeypatch, bytes(3))
    args = build_parser().parse_args(["listen", "--device", "-", "--output", "jsonl"])
    err = io.StringIO()
    with pytest.raises(SourceError, match="truncated"):
        listen(args, stdout=io.StringIO(), stderr=err, receiver_factory=scripted([]))
    assert err.getvalue().startswith("wmbus: 0 telegrams")


def test_defaults_hear_every_channel_of_a_plain_rtlsdr():
    from dsp.receiver import Receiver
    from sdr import cli_listen
    from sdr.source_live import DEFAULT_CENTER_FREQ_HZ, DEFAULT_SAMPLE_RATE_HZ

    args = build_parser().parse_args(["listen"])
    assert args.device == "rtlsdr:0" and args.output is None
    spec, options = cli_listen._source_request(args)
    assert spec == "rtlsdr:0"
    assert options["center_freq_hz"] == DEFAULT_CENTER_FREQ_HZ == 868.95e6
    assert options["sample_rate_hz"] == DEFAULT_SAMPLE_RATE_HZ == 2.4e6
    assert options["gain_db"] == "auto" and options["reconnect"] is False
    receiver = Receiver(options["sample_rate_hz"], options["center_freq_hz"])
    assert {phy for phy, _ in receiver.channels} == {"S", "T", "C", "C2"}


def test_help_stays_light():
    """Building the parser imports no numpy (``wmbus --help`` stays instant)."""
    code = (
        "import sys; from sdr.cli import build_parser; build_parser(); "
        "print('numpy' in sys.modules, 'rich' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True
    )
    assert done.stdout.split() == ["False", "False"], done.stderr


def test_warm_up_signal_reaches_every_chain(receiver_module):
    """The bursts run before the device opens decode on every chain (so every
    kernel has been compiled by then)."""
    from sdr import cli_listen
    from sdr.pipeline import ReceivePipeline

    iq = cli_listen._warm_up_signal({"S", "T", "C", "C2"}, 2.4e6, 868.95e6)
    pipeline = ReceivePipeline(2.4e6, 868.95e6)
    receptions = pipeline.feed(iq) + pipeline.flush()
    assert sorted(r.mode for r in receptions) == ["C1", "C1", "C2", "S1", "T1"]
    assert {r.frame.frame_format for r in receptions if r.mode == "C1"} == {"A", "B"}
    assert pipeline.counters.decoded == 5
