"""rtl_tcp client against scripted servers on 127.0.0.1: the handshake and commands byte
for byte, every way a connection ends, reconnection, and a consumer too slow to keep up.

The expected bytes are built here from the protocol's description (5-byte big-endian
commands), not with the module's own encoder.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.convert import bytes_to_iq
from sdr.loopback import LoopbackSource
from sdr.source import open_source
from sdr.source_rtltcp import (
    RtlTcpSource,
    build_command,
    parse_command,
    parse_header,
    parse_rtltcp_address,
)
from stack.errors import SourceError

LOOPBACK = "127.0.0.1"
R820T_HEADER = b"RTL0" + struct.pack(">II", 5, 29)
RATE_HZ = 1_600_000
FREQ_HZ = 868_950_000
# Every wait in these tests is bounded by this, s.
WAIT_S = 5.0


@dataclass
class Session:
    """What the scripted server does with one connection."""

    header: bytes = R820T_HEADER
    payload: bytes = b""
    close: bool = True  # after the payload: FIN; else fall silent, stay connected


@dataclass
class ScriptedServer:
    """A loopback TCP server playing one ``Session`` per connection, in order.

    Records every byte each client sent.  After its sessions it stops listening, so
    a further connection is refused.
    """

    sessions: list[Session]
    received: list[bytearray] = field(default_factory=list)
    done_sending: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.listener = socket.create_server((LOOPBACK, 0))
        self.listener.settimeout(WAIT_S)
        self.port = self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.listener:
            for session in self.sessions:
                try:
                    conn, _ = self.listener.accept()
                except OSError:
                    return
                self._play(conn, session)

    def _play(self, conn: socket.socket, session: Session) -> None:
        got = bytearray()
        self.received.append(got)
        reader = threading.Thread(target=self._drain, args=(conn, got), daemon=True)
        reader.start()
        # A client that gives up at once (a bad header) may be gone already.
        with contextlib.suppress(OSError):
            conn.sendall(session.header + session.payload)
            if session.close:
                conn.shutdown(socket.SHUT_WR)
        if session is self.sessions[-1]:
            self.done_sending.set()
        # Either way, the connection lasts until the client leaves.
        reader.join(WAIT_S)
        conn.close()

    @staticmethod
    def _drain(conn: socket.socket, got: bytearray) -> None:
        conn.settimeout(WAIT_S)
        while True:
            try:
                data = conn.recv(4096)
            except OSError:
                return
            if not data:
                return
            got += data

    def wait_received(self, index: int, n_bytes: int) -> bytes:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if len(self.received) > index and len(self.received[index]) >= n_bytes:
                return bytes(self.received[index])
            time.sleep(0.005)
        raise AssertionError(f"server got {self.received!r}, wanted {n_bytes} bytes")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(WAIT_S)


def command(code: int, value: int) -> bytes:
    """A command as the protocol describes it: u8 code, u32 big-endian parameter."""
    return bytes([code]) + (value % 2**32).to_bytes(4, "big")


def free_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return sock.getsockname()[1]


def client(port: int, **options) -> RtlTcpSource:
    options = {"sample_rate_hz": RATE_HZ, "center_freq_hz": FREQ_HZ, **options}
    options.setdefault("timeout_s", WAIT_S)
    return RtlTcpSource(LOOPBACK, port, **options)


def read_until_error(source, max_blocks: int = 10_000):
    """All samples until the source raises; returns (samples, the error or None)."""
    blocks = []
    for _ in range(max_blocks):
        try:
            block = source.read()
        except SourceError as exc:
            return np.concatenate(blocks or [np.zeros(0, np.complex64)]), exc
        if not block.size:
            break
        blocks.append(block)
    return np.concatenate(blocks or [np.zeros(0, np.complex64)]), None


def counter_payload(n_samples: int) -> bytes:
    """cu8 samples whose I and Q bytes count the sample index (mod 65536)."""
    index = np.arange(n_samples, dtype=np.uint32)
    pairs = np.stack([index & 0xFF, (index >> 8) & 0xFF], axis=1).astype(np.uint8)
    return pairs.tobytes()


def counter_of(iq: np.ndarray) -> np.ndarray:
    """The sample indices back from ``counter_payload`` samples."""
    codes = np.rint(iq.view(np.float32) * 127.5 + 127.5).astype(np.uint32)
    return codes[0::2] + (codes[1::2] << 8)


# --- handshake and commands -----------------------------------------------------------


def test_handshake_and_every_command_byte_for_byte():
    server = ScriptedServer([Session(close=False)])
    source = client(server.port, gain_db=40.0, ppm=-7, agc=True, bias_tee=True)
    expected = (
        command(0x02, RATE_HZ)
        + command(0x01, FREQ_HZ)
        + command(0x05, -7)  # two's complement: ff ff ff f9
        + command(0x03, 1)  # manual gain
        + command(0x04, 402)  # the R820T step nearest 40 dB: 40.2 dB
        + command(0x08, 1)
        + command(0x0E, 1)
    )
    assert expected[10:15] == bytes.fromhex("05fffffff9")
    got = server.wait_received(0, len(expected))
    source.close()
    server.stop()
    assert got == expected
    assert source.header == (5, 29)
    assert source.sent_commands[2] == (0x05, -7)
    assert b"".join(build_command(*c) for c in source.sent_commands) == expected


@pytest.mark.parametrize(
    ("gain", "tail"),
    [
        ("auto", command(0x03, 0)),  # tuner AGC, no gain value
        (None, b""),  # the server's own setting is left alone
        (0.4, command(0x03, 1) + command(0x04, 0)),  # nearest step of 0, 0.9: 0
        (49.6, command(0x03, 1) + command(0x04, 496)),  # the top step
    ],
)
def test_gain_commands(gain, tail):
    server = ScriptedServer([Session(close=False)])
    source = client(server.port, gain_db=gain)
    expected = command(0x02, RATE_HZ) + command(0x01, FREQ_HZ) + tail
    got = server.wait_received(0, len(expected))
    time.sleep(0.05)  # nothing else may follow
    assert bytes(server.received[0]) == got == expected
    source.close()
    server.stop()


def test_unknown_tuner_sends_the_gain_as_asked():
    server = ScriptedServer([Session(header=b"RTL0" + bytes(8), close=False)])
    source = client(server.port, gain_db=33.3)
    expected = command(0x02, RATE_HZ) + command(0x01, FREQ_HZ)
    expected += command(0x03, 1) + command(0x04, 333)
    assert server.wait_received(0, len(expected)) == expected
    source.close()
    server.stop()


def test_protocol_helpers_round_trip():
    for code, value in [(1, FREQ_HZ), (5, 2**32 - 3), (0x0E, 0)]:
        assert parse_command(build_command(code, value)) == (code, value)
    assert build_command(5, -3) == bytes.fromhex("05fffffffd")
    assert parse_header(R820T_HEADER) == (5, 29)
    with pytest.raises(SourceError, match="not an rtl_tcp server"):
        parse_header(b"RTL1" + bytes(8))
    with pytest.raises(SourceError, match="not an rtl_tcp server"):
        parse_header(b"RTL0")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 255), st.integers(-(2**31), 2**32 - 1))))
def test_any_command_encodes_as_the_protocol_says(commands):
    data = b"".join(build_command(code, value) for code, value in commands)
    assert data == b"".join(command(code, value) for code, value in commands)
    decoded = [parse_command(data[i : i + 5]) for i in range(0, len(data), 5)]
    assert decoded == [(code, value % 2**32) for code, value in commands]


@settings(max_examples=12, deadline=None)
@given(
    n_samples=st.integers(1, 20_000),
    sizes=st.lists(st.integers(1, 5000), min_size=1, max_size=8),
)
def test_any_read_sizes_give_the_same_samples(n_samples, sizes):
    payload = counter_payload(n_samples)
    server = ScriptedServer([Session(payload=payload)])
    source = client(server.port, end_on_close=True)
    blocks, index = [], 0
    while (block := source.read(sizes[index % len(sizes)])).size:
        assert block.size <= sizes[index % len(sizes)]
        blocks.append(block)
        index += 1
    source.close()
    server.stop()
    np.testing.assert_array_equal(np.concatenate(blocks), bytes_to_iq(payload, "cu8"))


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("", ("127.0.0.1", 1234)),
        ("localhost", ("localhost", 1234)),
        ("127.0.0.1:5555", ("127.0.0.1", 5555)),
        (":7000", ("127.0.0.1", 7000)),
        ("[::1]:1235", ("::1", 1235)),
        ("[::1]", ("::1", 1234)),
    ],
)
def test_parse_address(text, address):
    assert parse_rtltcp_address(text) == address


@pytest.mark.parametrize("text", ["host:0", "host:65536", "host:http", "::1:1234"])
def test_bad_addresses(text):
    with pytest.raises(SourceError, match="port|brackets"):
        parse_rtltcp_address(text)


# --- samples and the ways a stream ends -----------------------------------------------


def test_samples_then_the_server_closing_is_one_clear_error():
    payload = counter_payload(30_001)
    server = ScriptedServer([Session(payload=payload)])
    source = open_source(
        f"rtltcp:{LOOPBACK}:{server.port}",
        sample_rate_hz=RATE_HZ,
        center_freq_hz=FREQ_HZ,
    )
    iq, error = read_until_error(source)
    np.testing.assert_array_equal(iq, bytes_to_iq(payload, "cu8"))
    assert isinstance(error, SourceError)
    assert "closed the connection after 30001 samples" in str(error)
    assert "\n" not in str(error)
    with pytest.raises(SourceError, match="closed the connection"):
        source.read()  # and it stays ended
    source.close()
    server.stop()


def test_end_on_close_is_a_normal_end_of_stream():
    payload = counter_payload(5000)
    server = ScriptedServer([Session(payload=payload)])
    source = client(server.port, end_on_close=True)
    iq, error = read_until_error(source)
    assert error is None
    assert iq.size == 5000 and source.read().size == 0
    source.close()
    server.stop()


def test_a_partial_sample_at_the_close_is_dropped_and_reported():
    payload = counter_payload(100) + b"\x80"
    server = ScriptedServer([Session(payload=payload)])
    source = client(server.port, end_on_close=True)
    iq, error = read_until_error(source)
    assert iq.size == 100
    assert "after 100 samples" in str(error)  # odd byte count: not a clean end
    source.close()
    server.stop()


def test_refused_connection():
    port = free_port()
    with pytest.raises(SourceError, match="connection refused") as info:
        client(port)
    assert f"rtltcp:{LOOPBACK}:{port}" in str(info.value)


def test_not_an_rtl_tcp_server():
    server = ScriptedServer([Session(header=b"HTTP/1.1 200 OK\r\n")])
    with pytest.raises(SourceError, match="not an rtl_tcp server"):
        client(server.port)
    server.stop()


def test_a_server_that_never_greets_times_out():
    with socket.create_server((LOOPBACK, 0)) as listener:  # accepts in the backlog
        port = listener.getsockname()[1]
        started = time.monotonic()
        with pytest.raises(SourceError, match="no header from the server within 0.2"):
            client(port, connect_timeout_s=0.2)
        assert time.monotonic() - started < 2.0


def test_a_server_that_stops_sending_times_out_on_read():
    server = ScriptedServer([Session(payload=counter_payload(10), close=False)])
    source = client(server.port, timeout_s=0.3)
    assert source.read().size == 10
    with pytest.raises(SourceError, match="no samples for 0.3 s"):
        source.read()
    with pytest.raises(SourceError, match="no samples for 0.3 s"):
        source.read()
    source.close()
    server.stop()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"sample_rate_hz": 500e3}, "500000 S/s not supported by the RTL2832U"),
        ({"sample_rate_hz": 3.3e6}, "not supported"),
        ({"sample_rate_hz": 2.4e6 + 0.5}, "not supported"),
        ({"center_freq_hz": 0}, "cannot tune to 0 Hz"),
        ({"center_freq_hz": 5e9}, "cannot tune"),
        ({"gain_db": "loud"}, "gain must be a number of dB or 'auto'"),
        ({"gain_db": float("nan")}, "gain must be finite"),
    ],
)
def test_invalid_settings_fail_before_connecting(options, message):
    # The port is closed: the error must be about the setting, not the connection.
    with pytest.raises(SourceError, match=message):
        client(free_port(), **options)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"center_freq_hz": 2.4e9}, "R820T tuner cannot tune to 2400 MHz; it covers"),
        ({"gain_db": 80}, r"gain 80 dB outside the tuner's 0..49.6 dB"),
        ({"gain_db": -5}, "outside"),
    ],
)
def test_settings_the_tuner_cannot_do(options, message):
    server = ScriptedServer([Session()])
    with pytest.raises(SourceError, match=message):
        client(server.port, **options)
    server.stop()
    assert bytes(server.received[0]) == b""  # nothing was sent


# --- reconnecting ---------------------------------------------------------------------


def test_reconnect_resends_the_settings_and_goes_on_then_gives_up():
    first, second = counter_payload(4000), counter_payload(6000)[::-1]
    server = ScriptedServer([Session(payload=first), Session(payload=second)])
    source = client(server.port, ppm=3, reconnect=True, max_reconnects=2)
    iq, error = read_until_error(source)
    expected = np.concatenate([bytes_to_iq(first, "cu8"), bytes_to_iq(second, "cu8")])
    np.testing.assert_array_equal(iq, expected)
    assert source.reconnects == 1
    settings = command(2, RATE_HZ) + command(1, FREQ_HZ) + command(5, 3)
    assert [bytes(r) for r in server.received] == [settings, settings]
    # The third connection is refused twice: the attempts are bounded.
    assert "connection refused" in str(error)
    assert "gave up after 2 reconnect attempts" in str(error)
    assert source.drop_events == 1  # the gap between the two connections
    source.close()
    server.stop()


def test_reconnect_after_silence():
    first, second = counter_payload(3000), counter_payload(2000)[::-1]
    server = ScriptedServer(
        [Session(payload=first, close=False), Session(payload=second)]
    )
    source = client(
        server.port, timeout_s=0.3, reconnect=True, max_reconnects=1, end_on_close=True
    )
    iq, error = read_until_error(source)
    assert error is None
    expected = np.concatenate([bytes_to_iq(first, "cu8"), bytes_to_iq(second, "cu8")])
    np.testing.assert_array_equal(iq, expected)
    assert source.reconnects == 1
    source.close()
    server.stop()


# --- a consumer that cannot keep up ---------------------------------------------------


def test_slow_consumer_drops_whole_blocks_counts_them_and_never_blocks_the_reader():
    n_total = 600_000  # 1.2 MB: far more than two queued blocks
    server = ScriptedServer([Session(payload=counter_payload(n_total))])
    source = client(server.port, queue_blocks=2, end_on_close=True)
    # Read nothing until the reader thread has taken everything off the socket.
    assert server.done_sending.wait(WAIT_S)
    source._thread.join(WAIT_S)
    assert not source._thread.is_alive()
    iq, error = read_until_error(source)
    assert error is None
    assert source.dropped_samples > 0 and source.drop_events > 0
    assert iq.size + source.dropped_samples == n_total
    # What arrives is the stream with whole blocks missing: runs of consecutive
    # indices, at most one break per drop.
    steps = np.diff(counter_of(iq).astype(np.int64)) % 65536
    assert np.count_nonzero(steps != 1) <= source.drop_events
    source.close()
    server.stop()


def test_blocks_carry_their_index_and_wall_clock_time():
    payload = counter_payload(50_000)
    server = ScriptedServer([Session(payload=payload)])
    before_s = time.time()
    source = client(server.port, end_on_close=True)
    starts, times = [], []
    while (block := source.read(7000)).size:
        assert block.size <= 7000
        starts.append(source.block_sample_index)
        times.append(source.timestamp_s)
    after_s = time.time()
    assert starts == list(range(0, 50_000, 7000))
    # A block's first sample was taken before it arrived, within the test's span.
    assert all(before_s - 0.1 <= t <= after_s for t in times)
    assert source.time_of_sample(source.block_sample_index + RATE_HZ) == pytest.approx(
        times[-1] + 1.0
    )
    source.close()
    server.stop()


def test_a_recording_has_indices_but_no_clock():
    iq = np.arange(10, dtype=np.complex64)
    source = LoopbackSource(iq, RATE_HZ, chunk=[4, 3])
    assert source.read().size == 4 and source.block_sample_index == 0
    assert source.read().size == 3 and source.block_sample_index == 4
    assert source.timestamp_s is None and source.time_of_sample(5) is None
    assert (source.dropped_samples, source.drop_events) == (0, 0)


def test_close_while_streaming_is_prompt():
    server = ScriptedServer([Session(payload=counter_payload(1000), close=False)])
    source = client(server.port)
    assert source.read().size == 1000
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 1.0
    assert not source._thread.is_alive()
    with pytest.raises(SourceError, match="closed source"):
        source.read()
    server.stop()
