"""rtl_tcp client: samples from an rtl_tcp server (``rtltcp:HOST:PORT``).

Our own implementation of the protocol of osmocom's rtl_tcp (pyrtlsdr's TCP client
speaks a different, pickled one).  All numbers are big-endian::

    server -> client, once   12 bytes  "RTL0" | tuner type u32 | tuner gain count u32
    server -> client, then   cu8 samples: I, Q, I, Q ... (one byte each, offset 127.5)
    client -> server, any    5 bytes   command u8 | parameter u32

    command  parameter                      command  parameter
    0x01     centre frequency, Hz           0x08     RTL2832 AGC: 1 on, 0 off
    0x02     sample rate, S/s               0x09     direct sampling: 0, 1 I, 2 Q
    0x03     gain mode: 0 auto, 1 manual    0x0a     offset tuning: 1 on
    0x04     tuner gain, tenths of dB       0x0d     gain by index into the table
    0x05     frequency correction, ppm      0x0e     bias tee: 1 on, 0 off
             (signed, two's complement)

The server never answers a command, so every setting is checked here first against
what the header says about the tuner (``sdr.rtl2832``).  Commands go out in the order
rate, frequency, correction, gain mode, gain, AGC, bias tee.  The server closing the
connection ends the stream with ``SourceError`` (after every sample received), or a
reconnection with ``reconnect=True``; ``end_on_close=True`` makes a close at a
sample boundary a normal end of stream (for ``wmbus serve`` of a recording).
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import struct
from collections.abc import Callable
from typing import Any, NamedTuple

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
from stack.errors import SourceError

__all__ = [
    "CMD_AGC_MODE",
    "CMD_BIAS_TEE",
    "CMD_FREQ_CORRECTION",
    "CMD_FREQUENCY",
    "CMD_GAIN",
    "CMD_GAIN_MODE",
    "CMD_SAMPLE_RATE",
    "COMMAND_NAMES",
    "DEFAULT_PORT",
    "HEADER_MAGIC",
    "RtlTcpHeader",
    "RtlTcpSource",
    "build_command",
    "build_header",
    "parse_command",
    "parse_header",
    "parse_rtltcp_address",
]

log = logging.getLogger(__name__)

#: rtl_tcp's default port (rtl_tcp -p).
DEFAULT_PORT = 1234
#: First four bytes of the server's header.
HEADER_MAGIC = b"RTL0"
HEADER_SIZE = 12
COMMAND_SIZE = 5

# Command codes (rtl_tcp.c, command_worker).
CMD_FREQUENCY = 0x01
CMD_SAMPLE_RATE = 0x02
CMD_GAIN_MODE = 0x03
CMD_GAIN = 0x04
CMD_FREQ_CORRECTION = 0x05
CMD_AGC_MODE = 0x08
CMD_BIAS_TEE = 0x0E
#: Every command rtl_tcp knows, by code (for logs).
COMMAND_NAMES: dict[int, str] = {
    0x01: "frequency",
    0x02: "sample rate",
    0x03: "gain mode",
    0x04: "gain",
    0x05: "frequency correction",
    0x06: "IF gain",
    0x07: "test mode",
    0x08: "AGC mode",
    0x09: "direct sampling",
    0x0A: "offset tuning",
    0x0B: "RTL xtal",
    0x0C: "tuner xtal",
    0x0D: "gain by index",
    0x0E: "bias tee",
}

_HEADER = struct.Struct(">4sII")
_COMMAND = struct.Struct(">BI")
# Bytes asked of one recv(): 256 KiB is 55 ms at 2.4 MS/s.
_RECV_BYTES = 1 << 18
# recv() wakes this often to see a close(), s.
_POLL_S = 0.25
# Gains a server with an unknown tuner may be asked for, dB.
_ANY_TUNER_GAIN_DB = (-10.0, 60.0)


class RtlTcpHeader(NamedTuple):
    """The 12-byte greeting of an rtl_tcp server."""

    tuner_type: int
    gain_count: int


def build_header(tuner_type: int, gain_count: int) -> bytes:
    """The 12 bytes an rtl_tcp server sends first."""
    return _HEADER.pack(HEADER_MAGIC, tuner_type, gain_count)


def parse_header(data: bytes, where: str = "rtltcp") -> RtlTcpHeader:
    """Parse the server's greeting.

    Raises
    ------
    SourceError
        If ``data`` is not 12 bytes starting with ``RTL0`` (not an rtl_tcp server).
    """
    if len(data) != HEADER_SIZE or data[:4] != HEADER_MAGIC:
        raise SourceError(
            f"{where}: not an rtl_tcp server (its first bytes are {data[:12].hex()!r}"
            f", expected 'RTL0' and 8 more bytes)"
        )
    _, tuner_type, gain_count = _HEADER.unpack(data)
    return RtlTcpHeader(tuner_type, gain_count)


def build_command(command: int, value: int) -> bytes:
    """One 5-byte command; a negative ``value`` (ppm) is sent as two's complement."""
    return _COMMAND.pack(command, value & 0xFFFFFFFF)


def parse_command(data: bytes) -> tuple[int, int]:
    """(command, parameter) of a 5-byte command; the parameter as unsigned 32 bits."""
    command, value = _COMMAND.unpack(data)
    return command, value


_BRACKETED_RE = re.compile(r"\[(?P<host>[^\]]+)\](?::(?P<port>[^:]*))?")


def parse_rtltcp_address(text: str) -> tuple[str, int]:
    """Split ``HOST:PORT``, ``[IPv6]:PORT``, ``HOST`` or ``""`` into (host, port).

    Defaults: host 127.0.0.1, port 1234.

    Raises
    ------
    SourceError
        A port that is not a number in 1..65535, or an unbracketed IPv6 address.
    """
    text = text.strip()
    match = _BRACKETED_RE.fullmatch(text)
    if match:
        host, port_text = match["host"], match["port"] or ""
    elif text.count(":") > 1:
        raise SourceError(
            f"rtltcp:{text}: write an IPv6 address in brackets: rtltcp:[::1]:1234"
        )
    else:
        host, _, port_text = text.partition(":")
    if not port_text:
        return host or "127.0.0.1", DEFAULT_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SourceError(f"rtltcp:{text}: port must be 1-65535, got {port_text!r}")
    return host or "127.0.0.1", int(port_text)


def _recv_exactly(sock: socket.socket, n_bytes: int) -> bytes:
    """Read ``n_bytes`` (fewer only if the peer closes first)."""
    data = bytearray()
    while len(data) < n_bytes:
        chunk = sock.recv(n_bytes - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


class RtlTcpSource(LiveSource):
    """Samples from an rtl_tcp server.

    Parameters
    ----------
    host : str
        Server name or address (default 127.0.0.1).
    port : int
        TCP port (default 1234).
    center_freq_hz : float
        Frequency to tune to, Hz (sent as command 0x01).
    sample_rate_hz : float
        Sample rate, S/s (command 0x02); 225001-300000 or 900001-3200000.
    gain_db : float, 'auto' or None
        Tuner gain in dB (nearest step of the tuner, commands 0x03 1 and 0x04);
        'auto' for the tuner's AGC (0x03 0); None leaves the server's setting.
    ppm : int or None
        Frequency correction, ppm (0x05); None leaves the server's setting.
    agc : bool or None
        RTL2832 digital AGC (0x08); None leaves the server's setting.
    bias_tee : bool or None
        Antenna bias tee power (0x0e); None leaves the server's setting.
    connect_timeout_s : float
        Longest wait for the connection and the server's header, s.
    end_on_close : bool
        Treat the server closing the connection as the normal end of the stream.
    **live_options
        ``timeout_s``, ``reconnect``, ``max_reconnects``, ``queue_blocks``,
        ``chunk_samples``, ``clock`` (see ``LiveSource``).

    Attributes
    ----------
    header : RtlTcpHeader
        What the server said about its tuner.
    sent_commands : list of (int, int)
        Every command sent, as (code, parameter), in order, over all connections.

    Raises
    ------
    SourceError
        Invalid rate, frequency or gain; host that does not resolve, refused or
        timed-out connection; a peer that is not an rtl_tcp server.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        center_freq_hz: float = DEFAULT_CENTER_FREQ_HZ,
        sample_rate_hz: float = DEFAULT_SAMPLE_RATE_HZ,
        gain_db: float | str | None = None,
        ppm: int | None = None,
        agc: bool | None = None,
        bias_tee: bool | None = None,
        connect_timeout_s: float = 5.0,
        end_on_close: bool = False,
        **live_options: Any,
    ):
        name = f"rtltcp:{host}:{port}"
        rate = check_sample_rate(sample_rate_hz, name)
        check_frequency(center_freq_hz, None, name)
        super().__init__(
            sample_rate_hz=rate,
            center_freq_hz=center_freq_hz,
            name=name,
            sample_format="cu8",
            **live_options,
        )
        self.address = (host, int(port))
        self.gain_db = parse_gain(gain_db, name)
        self.ppm = None if ppm is None else int(ppm)
        self.agc, self.bias_tee = agc, bias_tee
        self.connect_timeout_s = float(connect_timeout_s)
        self.end_on_close = end_on_close
        self.header = RtlTcpHeader(0, 0)
        self.sent_commands: list[tuple[int, int]] = []
        self._sock: socket.socket | None = None
        self._start()

    @classmethod
    def from_spec(cls, arg: str, **options: Any) -> RtlTcpSource:
        """Open ``rtltcp:HOST:PORT`` (see the class parameters for ``options``)."""
        host, port = parse_rtltcp_address(arg)
        return cls(host, port, **options)

    # --- connecting -------------------------------------------------------------------

    def _connect(self) -> None:
        self._sock = self._open_socket()
        self._sock.settimeout(self.connect_timeout_s)
        try:
            head = _recv_exactly(self._sock, HEADER_SIZE)
        except OSError as exc:
            raise SourceError(
                f"{self.name}: no header from the server within "
                f"{self.connect_timeout_s:g} s ({exc})"
            ) from exc
        if not head:
            raise SourceError(f"{self.name}: the server closed at once (busy?)")
        self.header = parse_header(head, self.name)
        log.info(
            "%s: tuner %s, %d gain steps",
            self.name,
            TUNER_NAMES.get(self.header.tuner_type, self.header.tuner_type),
            self.header.gain_count,
        )
        self._send_settings()
        self._sock.settimeout(_POLL_S)

    def _open_socket(self) -> socket.socket:
        host, port = self.address
        try:
            return socket.create_connection((host, port), self.connect_timeout_s)
        except socket.gaierror as exc:
            raise SourceError(f"{self.name}: unknown host {host!r} ({exc})") from exc
        except ConnectionRefusedError as exc:
            raise SourceError(
                f"{self.name}: connection refused (is rtl_tcp or wmbus serve "
                f"running on port {port}?)"
            ) from exc
        except TimeoutError as exc:
            raise SourceError(
                f"{self.name}: no answer within {self.connect_timeout_s:g} s "
                "(host unreachable?)"
            ) from exc
        except OSError as exc:
            raise SourceError(
                f"{self.name}: cannot connect: {exc.strerror or exc}"
            ) from exc

    def _settings(self) -> list[tuple[int, int]]:
        """The commands for our settings, checked against the server's tuner."""
        tuner = tuner_info(self.header.tuner_type)
        freq = check_frequency(self.center_freq_hz, tuner, self.name)
        rate = round(self.sample_rate_hz)
        commands = [(CMD_SAMPLE_RATE, rate), (CMD_FREQUENCY, freq)]
        if self.ppm is not None:
            commands.append((CMD_FREQ_CORRECTION, self.ppm))
        if self.gain_db == "auto":
            commands.append((CMD_GAIN_MODE, 0))
        elif self.gain_db is not None:
            commands += [(CMD_GAIN_MODE, 1), (CMD_GAIN, self._gain_tenths(tuner))]
        if self.agc is not None:
            commands.append((CMD_AGC_MODE, int(self.agc)))
        if self.bias_tee is not None:
            commands.append((CMD_BIAS_TEE, int(self.bias_tee)))
        return commands

    def _gain_tenths(self, tuner: Any) -> int:
        gain_db = float(self.gain_db)  # type: ignore[arg-type]
        if tuner is not None:
            return nearest_gain_tenth_db(gain_db, tuner.gains_tenth_db, self.name)
        low_db, high_db = _ANY_TUNER_GAIN_DB
        if not low_db <= gain_db <= high_db:
            raise SourceError(
                f"{self.name}: gain {gain_db:g} dB outside {low_db:g}..{high_db:g} dB"
            )
        return round(10 * gain_db)

    def _send_settings(self) -> None:
        assert self._sock is not None
        commands = self._settings()
        try:
            self._sock.sendall(b"".join(build_command(c, v) for c, v in commands))
        except OSError as exc:
            raise SourceError(f"{self.name}: cannot send settings: {exc}") from exc
        self.sent_commands += commands

    # --- streaming --------------------------------------------------------------------

    def _stream(self, emit: Callable[[bytes | bytearray | memoryview], None]) -> None:
        sock = self._sock
        assert sock is not None
        buf = bytearray(_RECV_BYTES)
        view = memoryview(buf)
        n_total = 0
        while self._streaming():
            try:
                n_read = sock.recv_into(buf)
            except TimeoutError:
                continue  # silence is judged by read()'s timeout_s
            except OSError as exc:
                if not self._streaming():
                    return
                raise SourceError(
                    f"{self.name}: connection lost after {n_total // 2} samples: "
                    f"{exc.strerror or exc}"
                ) from exc
            if not n_read:
                self._on_server_close(n_total)
                return
            n_total += n_read
            emit(view[:n_read])

    def _on_server_close(self, n_bytes: int) -> None:
        if not self._streaming():
            return
        if self.end_on_close and n_bytes % 2 == 0:
            self._clean_end = True
            log.info("%s: the server ended the stream", self.name)
            return
        raise SourceError(
            f"{self.name}: the server closed the connection after {n_bytes // 2} "
            "samples"
        )

    def _interrupt(self) -> None:
        sock = self._sock
        if sock is not None:
            # Already disconnected: nothing to wake.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def _disconnect(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
