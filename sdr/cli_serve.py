"""``wmbus serve``: stream a recording as an rtl_tcp server (``sdr.rtltcp_server``).

    wmbus serve FILE [--port P] [--host 127.0.0.1] [--realtime] [--loop] [--once]
                     [--format F] [--rate R] [--center F]

Any rtl_tcp client can then listen to the recording: ``wmbus listen --device
rtltcp:127.0.0.1:P``, ``rtl_433 -d rtl_tcp:127.0.0.1:P``, SDR++ or GQRX.  The address
actually listened on is printed on standard error (with ``--port 0``, a free port is
chosen).  Ctrl-C or SIGTERM stops it cleanly and prints what was served.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import signal
import sys

from sdr.cliutil import UsageError

__all__ = ["add_serve_parser", "run_serve"]

log = logging.getLogger(__name__)


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``serve`` subcommand to ``wmbus``'s subparsers."""
    parser = sub.add_parser(
        "serve",
        help="stream a recording as an rtl_tcp server",
        description=(
            "Stream a recording (raw cu8/cs8/cs16/cf32, SigMF or WAV) with the rtl_tcp "
            "protocol, so that any rtl_tcp client (wmbus listen --device rtltcp:..., "
            "rtl_433 -d rtl_tcp:...) can receive it.  Samples are sent as cu8.  "
            "Commands from the client are logged; a frequency or rate differing from "
            "the recording's is a warning, and the samples are sent unchanged."
        ),
    )
    parser.add_argument("file", metavar="FILE", help="the recording to stream")
    parser.add_argument(
        "--port", type=int, default=1234, help="TCP port (default 1234; 0: any free)"
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only)",
    )
    parser.add_argument(
        "--realtime",
        action="store_true",
        help="send at the recording's sample rate (default: as fast as read)",
    )
    parser.add_argument(
        "--loop", action="store_true", help="repeat the recording without end"
    )
    parser.add_argument(
        "--once", action="store_true", help="exit when the first client leaves"
    )
    parser.add_argument(
        "--format",
        dest="file_format",
        metavar="FMT",
        help="cu8, cs8, cs16, cf32, sigmf or wav (default: from the extension)",
    )
    parser.add_argument(
        "--rate", help="sample rate if not in the file name or metadata"
    )
    parser.add_argument(
        "--center", help="centre frequency if not in the file name or metadata"
    )
    parser.set_defaults(handler=run_serve)


def _file_options(args: argparse.Namespace) -> dict:
    from sdr.units import parse_frequency

    options: dict = {"file_format": args.file_format}
    for flag, key in (("rate", "sample_rate_hz"), ("center", "center_freq_hz")):
        text = getattr(args, flag)
        if text is not None:
            try:
                options[key] = parse_frequency(text)
            except ValueError as exc:
                raise UsageError(f"--{flag}: {exc}") from None
    return options


def _check_host(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        log.warning(
            "listening on %s: other machines can connect and read the recording", host
        )


def run_serve(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C (or the first client leaves, with ``--once``)."""
    from sdr.rtltcp_server import RtlTcpServer

    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be 0-65535, got {args.port}")
    _check_host(args.host)
    server = RtlTcpServer(
        args.file,
        host=args.host,
        port=args.port,
        realtime=args.realtime,
        loop=args.loop,
        once=args.once,
        **_file_options(args),
    )
    host, port = server.address
    print(f"wmbus serve: listening on {host}:{port}", file=sys.stderr, flush=True)
    # SIGTERM (kill, systemd) stops as cleanly as Ctrl-C does.
    previous = signal.signal(signal.SIGTERM, lambda *_: server.shutdown())
    try:
        server.serve()
    except KeyboardInterrupt:
        server.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
    print(
        f"wmbus serve: stopped; {server.clients_served} client(s), "
        f"{server.samples_sent} samples sent",
        file=sys.stderr,
        flush=True,
    )
    return 0
