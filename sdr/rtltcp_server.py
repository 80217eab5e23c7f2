"""A small rtl_tcp server that streams a recording: any rtl_tcp client can listen to it.

``wmbus serve FILE`` (``sdr.cli_serve``) runs one.  It speaks osmocom rtl_tcp's
protocol (see ``sdr.source_rtltcp``): to each client it sends the 12-byte header (an
R820T tuner with its 29 gain steps), then the file's samples as cu8, converted from
whatever format ``sdr.source_file`` reads.  What happens, per client::

    accept --header--> stream the file from its start --end--> close (or again: loop)
      |                  |  --realtime: paced at the file's sample rate
      |                  |  a full socket waits (TCP flow control), nothing is dropped
      |   commands <--- client: logged; a frequency or rate differing from the
      |                 file's is a warning (the samples cannot change), never an error
      +-- the client leaves: its stream stops, the next client is accepted

One client at a time; others wait in the listen backlog.  It listens on 127.0.0.1
unless told otherwise.  ``shutdown()`` (or Ctrl-C in ``wmbus serve``) stops it within
a fraction of a second, wherever it is.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

from dsp.convert import iq_to_bytes
from sdr.rtl2832 import TUNER_R820T, tuner_info
from sdr.source import TruncatedError
from sdr.source_file import FileSource
from sdr.source_rtltcp import (
    CMD_FREQ_CORRECTION,
    CMD_FREQUENCY,
    CMD_GAIN,
    CMD_SAMPLE_RATE,
    COMMAND_NAMES,
    COMMAND_SIZE,
    build_header,
    parse_command,
)
from sdr.units import format_frequency
from stack.errors import SourceError

__all__ = ["RtlTcpServer"]

log = logging.getLogger(__name__)

# Every blocking call wakes this often to see shutdown(), s.
_POLL_S = 0.2
# Samples per block sent: 16384 is 6.8 ms at 2.4 MS/s, fine pacing for --realtime.
_BLOCK_SAMPLES = 1 << 14
# Longest wait for a client to leave after the end of the recording, s.
_HANG_UP_S = 2.0
# Largest difference between a requested and the file's frequency/rate that is no
# difference at all (rounding in the client), Hz.
_SAME_HZ = 1.0


class _ClientGone(Exception):
    """The client disconnected (or the server is shutting down)."""


class RtlTcpServer:
    """Serve a recording over the rtl_tcp protocol.

    Parameters
    ----------
    path : str or Path
        The recording (raw IQ or SigMF; see ``sdr.source_file``).
    host : str
        Address to listen on (default 127.0.0.1, this machine only).
    port : int
        TCP port; 0 picks a free one (see ``address``).
    realtime : bool
        Send at the file's sample rate instead of as fast as the client reads.
    loop : bool
        Start the file again at its end instead of closing the connection.
    once : bool
        Stop after the first client has gone.
    file_options
        ``file_format``, ``sample_rate_hz``, ``center_freq_hz`` for the file.

    Attributes
    ----------
    address : (str, int)
        Where it listens.
    commands : list of (int, int)
        Every command received, as (code, parameter), over all clients.
    clients_served : int
        Clients that have come and gone.
    samples_sent : int
        Samples sent, over all clients.

    Raises
    ------
    SourceError
        The file cannot be read (missing, unknown format, unknown rate), or the port
        cannot be opened (in use, no permission).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        host: str = "127.0.0.1",
        port: int = 1234,
        realtime: bool = False,
        loop: bool = False,
        once: bool = False,
        **file_options: Any,
    ):
        self.path = str(path)
        self.file_options = file_options
        with self._open_file() as probe:  # fail now, not when a client arrives
            self.sample_rate_hz = probe.sample_rate_hz
            self.center_freq_hz = probe.center_freq_hz
        self.realtime, self.loop, self.once = realtime, loop, once
        self.commands: list[tuple[int, int]] = []
        self.clients_served = 0
        self.samples_sent = 0
        self._stop = threading.Event()
        # An R820T with its 29 gain steps: the commonest dongle, known to clients.
        tuner = tuner_info(TUNER_R820T)
        assert tuner is not None
        self._header = build_header(TUNER_R820T, len(tuner.gains_tenth_db))
        self._listener = self._listen(host, port)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]

    def _open_file(self) -> FileSource:
        return FileSource(self.path, chunk_samples=_BLOCK_SAMPLES, **self.file_options)

    @staticmethod
    def _listen(host: str, port: int) -> socket.socket:
        try:
            listener = socket.create_server((host, port), backlog=4)
        except OSError as exc:
            raise SourceError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        listener.settimeout(_POLL_S)
        return listener

    # --- the accept loop --------------------------------------------------------------

    def serve(self) -> None:
        """Accept clients one at a time until ``shutdown()`` (or one, with ``once``)."""
        log.info(
            "serving %s (%s S/s, centre %sHz) on %s:%d",
            self.path,
            format_frequency(self.sample_rate_hz, "k"),
            format_frequency(self.center_freq_hz),
            *self.address,
        )
        try:
            while not self._stop.is_set():
                try:
                    conn, peer = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    if self._stop.is_set():
                        break
                    raise
                self._serve_client(conn, peer)
                if self.once:
                    break
        finally:
            self.close()

    def shutdown(self) -> None:
        """Stop serving (from another thread, or a signal handler); returns at once."""
        self._stop.set()

    def close(self) -> None:
        """Stop and release the listening socket; idempotent."""
        self._stop.set()
        self._listener.close()

    # --- one client -------------------------------------------------------------------

    def _serve_client(self, conn: socket.socket, peer: Any) -> None:
        log.info("client %s connected", _peer_text(peer))
        gone = threading.Event()
        conn.settimeout(_POLL_S)
        reader = threading.Thread(
            target=self._read_commands, args=(conn, gone), daemon=True
        )
        try:
            self._send(conn, self._header, gone)
            reader.start()
            self._stream_file(conn, gone)
            self._hang_up(conn, gone)
        except _ClientGone:
            log.info("client %s left", _peer_text(peer))
        except OSError as exc:
            log.warning("client %s: %s", _peer_text(peer), exc)
        finally:
            gone.set()
            if reader.is_alive():
                reader.join(2 * _POLL_S + 1.0)
            conn.close()
            self.clients_served += 1

    def _hang_up(self, conn: socket.socket, gone: threading.Event) -> None:
        """End of the recording: send FIN, let the client read all and leave."""
        log.info("end of %s: closing the connection", self.path)
        conn.shutdown(socket.SHUT_WR)
        # Closing with a command unread would reset the connection and could lose
        # samples the client has not read yet; so wait (bounded) for it to leave.
        deadline_s = time.monotonic() + _HANG_UP_S
        while not gone.wait(_POLL_S):
            if self._stop.is_set() or time.monotonic() > deadline_s:
                log.info("client still connected after the end; closing")
                return

    def _stream_file(self, conn: socket.socket, gone: threading.Event) -> None:
        start_s, n_sent = time.monotonic(), 0
        while True:
            with self._open_file() as source:
                try:
                    for iq in source:
                        self._send(conn, iq_to_bytes(iq, "cu8"), gone)
                        n_sent += iq.size
                        self.samples_sent += iq.size
                        self._pace(start_s, n_sent, gone)
                except TruncatedError as exc:
                    log.warning("%s", exc)
            if not self.loop:
                return

    def _pace(self, start_s: float, n_sent: int, gone: threading.Event) -> None:
        """With --realtime, wait until ``n_sent`` samples' worth of time has passed."""
        if self.realtime:
            wait_s = start_s + n_sent / self.sample_rate_hz - time.monotonic()
            if wait_s > 0 and (self._stop.wait(wait_s) or gone.is_set()):
                raise _ClientGone

    def _send(self, conn: socket.socket, data: bytes, gone: threading.Event) -> None:
        view = memoryview(data)
        while view:
            if self._stop.is_set() or gone.is_set():
                raise _ClientGone
            try:
                n_sent = conn.send(view)
            except TimeoutError:
                continue  # the client reads slowly: wait (TCP flow control)
            except (BrokenPipeError, ConnectionResetError) as exc:
                raise _ClientGone from exc
            view = view[n_sent:]

    def _read_commands(self, conn: socket.socket, gone: threading.Event) -> None:
        """Read 5-byte commands until the client leaves; log each one."""
        pending = b""
        while not (gone.is_set() or self._stop.is_set()):
            try:
                data = conn.recv(64)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            pending += data
            while len(pending) >= COMMAND_SIZE:
                self._on_command(*parse_command(pending[:COMMAND_SIZE]))
                pending = pending[COMMAND_SIZE:]
        gone.set()

    def _on_command(self, command: int, value: int) -> None:
        self.commands.append((command, value))
        name = COMMAND_NAMES.get(command)
        if name is None:
            log.warning("unknown command 0x%02x (parameter %d) ignored", command, value)
        elif command == CMD_FREQUENCY and abs(value - self.center_freq_hz) > _SAME_HZ:
            log.warning(
                "client tunes to %sHz; the recording is centred on %sHz and is "
                "sent unchanged",
                format_frequency(value),
                format_frequency(self.center_freq_hz),
            )
        elif command == CMD_SAMPLE_RATE and abs(value - self.sample_rate_hz) > _SAME_HZ:
            log.warning(
                "client asks for %s S/s; the recording has %s S/s and is sent "
                "unchanged",
                format_frequency(value, "k"),
                format_frequency(self.sample_rate_hz, "k"),
            )
        else:
            shown = _signed(value) if command == CMD_FREQ_CORRECTION else value
            unit = " (tenths of dB)" if command == CMD_GAIN else ""
            log.info("command %s = %d%s", name, shown, unit)


def _signed(value: int) -> int:
    """A u32 parameter read back as the signed number it carries (ppm)."""
    return struct.unpack(">i", struct.pack(">I", value))[0]


def _peer_text(peer: Any) -> str:
    return f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
