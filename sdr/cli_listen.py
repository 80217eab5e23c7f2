"""``wmbus listen``: receive live from a radio, an rtl_tcp server or standard input.

::

    wmbus listen [--device rtlsdr[:INDEX|:SERIAL] | rtltcp:HOST:PORT | soapy:ARGS | -]
                 [--freq F] [--rate R] [--gain G] [--ppm P] [--bias-tee] [--modes ...]
                 [--keys FILE | --key HEX] [--output text|jsonl|rtlwmbus] [--all]
                 [--mqtt URL ...] [--meters ID,...] [--reconnect] [--duration S]

Defaults hear every channel with a plain RTL-SDR: the first dongle, centre 868.95 MHz
at 2.4 MS/s (868.3 MHz S, 868.95 MHz T and C, 869.525 MHz C2 all lie in the
1.2 MHz either side), tuner AGC.  ``-`` reads cu8 from standard input at --rate and
--freq, as ``rtl_sdr -f 868.95M -s 2400000 -`` writes it.

What comes out where::

    stdout  a terminal and no --output: the live table of meters (sdr.live_table);
            otherwise one line per telegram in the --output format of
            ``wmbus replay`` (default text), flushed per line
    stderr  warnings (lost samples, reconnects), then the session's counts:
            wmbus: 7 telegrams (7 decoded, 0 no key, ...), 0 CRC failed
            wmbus: stopped by SIGINT after 12.3 s: 29491200 samples, 0 dropped

Times in the lines are the wall clock of each frame's first sample, from the source
(``time_of_sample``); standard input has no clock, so its first sample is taken to
be the moment listening began.

How it ends::

    Ctrl-C, SIGTERM, --duration    the loop stops between two blocks (or leaves a wait
                                   for samples), the receiver is flushed, lines are
                                   flushed, MQTT is closed, counts printed: exit 0
    end of standard input          the same, exit 0
    device gone, server closed,    frames so far are written, counts printed, then
    no samples for 5 s             one line saying what happened: exit 1 (with
                                   --reconnect the source first tries again)
    no device, busy, refused,      one line, exit 1, before anything is received
    bad broker URL or credentials
    flags that do not parse        usage and one line, exit 2
"""

from __future__ import annotations

import argparse
import io
import logging
import sys
from typing import TYPE_CHECKING, Any, TextIO

from sdr.cli_receive import (
    ReceptionOutput,
    add_receive_arguments,
    build_pipeline,
    parse_frequency_flag,
    phys_from_args,
    report_session,
)
from sdr.cliutil import UsageError

if TYPE_CHECKING:
    from sdr.listen_session import ListenSession
    from sdr.pipeline import ReceiverFactory

__all__ = ["add_listen_parser", "run_listen", "listen"]

log = logging.getLogger(__name__)

_DEFAULT_DEVICE = "rtlsdr:0"
# sdr.source_live's DEFAULT_CENTER_FREQ_HZ and DEFAULT_SAMPLE_RATE_HZ, repeated so
# that ``wmbus --help`` does not import numpy (a test holds them equal).
_DEFAULT_FREQ_HZ = 868.95e6
_DEFAULT_RATE_HZ = 2.4e6
_RADIOS = ("rtlsdr", "rtltcp", "soapy")


def add_listen_parser(sub: argparse._SubParsersAction, add_key_options) -> None:
    """Add the ``listen`` subcommand to the ``wmbus`` parser."""
    parser = sub.add_parser(
        "listen",
        help="receive live from an RTL-SDR, rtl_tcp, SoapySDR or stdin",
        description=(
            "Receive and decode wM-Bus telegrams live on every channel in the band. "
            "With no options: the first RTL-SDR at 868.95 MHz, 2.4 MS/s (S, T, C "
            "and C2 all heard), tuner AGC; on a terminal a live table of meters, "
            "otherwise one line per telegram.  Ctrl-C stops and prints the counts."
        ),
    )
    parser.add_argument(
        "--device",
        default=_DEFAULT_DEVICE,
        metavar="DEV",
        help="rtlsdr[:INDEX|:SERIAL] (default rtlsdr:0), rtltcp:HOST:PORT, "
        "soapy:ARGS (e.g. soapy:driver=airspy), or - for cu8 on standard input",
    )
    parser.add_argument(
        "--freq", help="centre frequency (default 868.95M), e.g. 868.625M"
    )
    parser.add_argument("--rate", help="sample rate (default 2.4M)")
    parser.add_argument(
        "--gain", help="tuner gain in dB, or auto (default: auto, the tuner's AGC)"
    )
    parser.add_argument(
        "--ppm", type=int, help="frequency correction of the crystal, ppm"
    )
    parser.add_argument(
        "--bias-tee", action="store_true", help="power the antenna input (bias tee)"
    )
    add_receive_arguments(
        parser,
        add_key_options,
        output_default=None,
        output_help="text, jsonl or rtlwmbus (for wmbusmeters); default: a live "
        "table on a terminal, text otherwise",
    )
    parser.add_argument(
        "--meters",
        metavar="ID,...",
        help="output only these meters (8 hex digits each; 1234* for a prefix)",
    )
    parser.add_argument(
        "--reconnect",
        action="store_true",
        help="when the device or server goes away, reconnect instead of exiting",
    )
    parser.add_argument(
        "--duration", type=float, metavar="S", help="stop after S seconds"
    )
    parser.set_defaults(handler=run_listen)


def _gain(text: str | None) -> float | str | None:
    if text is None or text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise UsageError(f"--gain: {text!r} is not a number of dB or 'auto'") from None


def _source_request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(spec, options) for ``open_source``, from the flags; UsageError if bad."""
    from sdr.source import SOURCE_BACKENDS, split_spec

    kind, _ = split_spec(args.device, SOURCE_BACKENDS)
    rate_hz = parse_frequency_flag(args.rate, "--rate")
    freq_hz = parse_frequency_flag(args.freq, "--freq")
    if kind == "file" and args.device != "-":  # a recording: its own rate and centre
        options: dict[str, Any] = {}
        if rate_hz is not None:
            options["sample_rate_hz"] = rate_hz
        if freq_hz is not None:
            options["center_freq_hz"] = freq_hz
        return args.device, options
    options = {
        "sample_rate_hz": _DEFAULT_RATE_HZ if rate_hz is None else rate_hz,
        "center_freq_hz": _DEFAULT_FREQ_HZ if freq_hz is None else freq_hz,
    }
    if args.device == "-":  # cu8 as rtl_sdr writes it
        return args.device, {**options, "file_format": "cu8"}
    if kind not in _RADIOS:
        raise UsageError(
            f"--device {args.device}: give rtlsdr[:INDEX|:SERIAL], rtltcp:HOST:PORT, "
            "soapy:ARGS or - (recordings: wmbus replay)"
        )
    return args.device, {
        **options,
        "gain_db": _gain(args.gain),
        "ppm": args.ppm,
        "bias_tee": True if args.bias_tee else None,
        "reconnect": args.reconnect,
    }


def _warn_ignored(args: argparse.Namespace, err: TextIO) -> None:
    if args.device == "-" or args.device.partition(":")[0] not in _RADIOS:
        given = [
            flag
            for flag, value in (
                ("--gain", args.gain),
                ("--ppm", args.ppm),
                ("--bias-tee", args.bias_tee or None),
                ("--reconnect", args.reconnect or None),
            )
            if value is not None
        ]
        if given:
            print(
                f"wmbus: warning: {', '.join(given)} ignored: {args.device} is not a "
                "radio (set them where the samples are made, e.g. rtl_sdr -g)",
                file=err,
                flush=True,
            )


def _warm_up(args: argparse.Namespace, options: dict[str, Any]) -> None:
    """Run a spare receiver on our own bursts, one per chain, before the device opens.

    numba compiles (or loads from its cache) every kernel of the receive path on the
    first frame of each chain: seconds the first time, while a radio's queue fills
    up.  Done now, it costs the user a moment and the radio no samples.
    """
    rate, freq = options.get("sample_rate_hz"), options.get("center_freq_hz")
    if rate is None or freq is None:
        return  # a recording: nothing is lost while compiling
    where = "standard input" if args.device == "-" else args.device
    # Its warnings are dropped: the real pipeline gives them, once.
    spare = build_pipeline(args, where, rate, freq, keys=None, err=io.StringIO())
    heard = {phy for phy, _ in getattr(spare.receiver, "channels", [])}
    try:
        iq = _warm_up_signal(heard, rate, freq)
    except ValueError as exc:  # a rate our transmitter cannot render: no harm
        log.debug("no warm-up signal: %s", exc)
        return
    spare.feed(iq)
    spare.flush()


def _warm_up_signal(phys: set[str], rate_hz: float, freq_hz: float) -> Any:
    """Bursts of a made-up meter: S1, T1, C1 (frame formats A and B), C2 downlink."""
    from sdr.transmit import TxFrame, render
    from stack.encode import encode_telegram

    records = bytes.fromhex("0c1300000000")  # volume 0 m3
    up = encode_telegram(manufacturer="ABC", meter_id="00000001", payload=records)
    down = encode_telegram(
        manufacturer="ABC", meter_id="00000001", c_field=0x53, payload=records
    )
    frames = {
        "S": [TxFrame(up, "S1")],
        "T": [TxFrame(up, "T1")],
        "C": [TxFrame(up, "C1", "A"), TxFrame(up, "C1", "B")],
        "C2": [TxFrame(down, "C2", "A", "other")],
    }
    chosen = [frame for phy in sorted(phys) for frame in frames.get(phy, [])]
    iq, _ = render(
        chosen, sample_rate_hz=rate_hz, center_freq_hz=freq_hz, ebn0_db=20.0, seed=1
    )
    return iq


def _use_table(args: argparse.Namespace, out: TextIO) -> bool:
    return args.output is None and bool(getattr(out, "isatty", lambda: False)())


def listen(
    args: argparse.Namespace,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    receiver_factory: ReceiverFactory | None = None,
) -> int:
    """Run ``wmbus listen`` with parsed arguments; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        As ``add_listen_parser`` defines them.
    stdout, stderr : TextIO, optional
        Streams for telegrams (or the table) and for counters (default the sys ones).
    receiver_factory : callable, optional
        Passed to ``ReceivePipeline`` (tests use a stand-in receiver).

    Returns
    -------
    int
        0 after a stop (Ctrl-C, SIGTERM, --duration) or the end of standard input.

    Raises
    ------
    UsageError
        For a flag value that does not parse (--freq, --rate, --gain, --modes,
        --meters, --duration).
    SourceError
        No device, busy device, unreachable or refusing server, invalid frequency,
        rate or gain; or the source failing while listening (after the frames so
        far and the counts).
    MqttError
        A broker URL that does not parse, a broker that cannot be reached or
        refuses the credentials.
    KeyFormatError
        For a malformed --key or key file.
    """
    from sdr.keys import keyring_from_options
    from sdr.listen_session import ListenSession, parse_meter_ids
    from sdr.mqtt_publish import publisher_from_args
    from sdr.output_rx import ReceptionWriter
    from sdr.source import open_source

    out, err = stdout or sys.stdout, stderr or sys.stderr
    phys_from_args(args)  # bad flags are usage errors before anything opens
    meters = parse_meter_ids(args.meters)
    if args.duration is not None and not args.duration > 0:
        raise UsageError(f"--duration must be positive, got {args.duration:g}")
    spec, options = _source_request(args)
    keys = keyring_from_options(args.key, args.keys)
    _warn_ignored(args, err)
    if receiver_factory is None:
        _warm_up(args, options)
    # Connected before the device opens: a radio's queue must not fill meanwhile.
    sessions: list[ListenSession] = []
    publisher = publisher_from_args(
        args, lambda: sessions[0].stats() if sessions else {}
    )
    try:
        source = open_source(spec, **options)
    except BaseException:
        if publisher is not None:
            publisher.close(timeout_s=1.0)
        raise
    with source:
        pipeline = build_pipeline(
            args,
            source.name,
            source.sample_rate_hz,
            source.center_freq_hz,
            keys=keys,
            err=err,
            receiver_factory=receiver_factory,
            centre_flag="--freq",
        )
        table = _use_table(args, out)
        writer = None if table else ReceptionWriter(out, args.output or "text")
        output = ReceptionOutput(writer, publisher)
        sessions.append(ListenSession(source, pipeline, output, meters))
        return _run_session(sessions[0], args.duration, out, err, table)


def _run_session(
    session: ListenSession,
    duration_s: float | None,
    out: TextIO,
    err: TextIO,
    table: bool,
) -> int:
    """The receive loop until a stop or the source's end; then the counts."""
    from sdr.listen_session import StopControl
    from sdr.pipeline import run_pipeline
    from stack.errors import SourceError

    failure: SourceError | None = None
    with StopControl(duration_s) as stop:
        stream: Any = session.stream(stop)  # duck-types the source for run_pipeline
        try:
            with _live_view(session, out, table):
                run_pipeline(stream, session.pipeline, session.emit, session.tick)
        except SourceError as exc:  # raised after every frame received was emitted
            failure = exc
    # Closed before the counts: a radio left running would fill its queue (and warn
    # of losses) while the MQTT publisher takes its time to close.
    session.source.close()
    summary = session.summary(session.end_reason(stop, failure is not None))
    report_session(err, session.pipeline, session.output.publisher, (summary,))
    if failure is not None:
        raise failure
    return 0


class _NoView:
    """The context of no live table."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc_info: object) -> None:
        return None


def _live_view(session: ListenSession, out: TextIO, table: bool) -> Any:
    """The live table's context (set on the session), or a context doing nothing."""
    if not table:
        return _NoView()
    from sdr.live_table import LiveView

    session.view = LiveView(out, session.source.sample_rate_hz, session.counts)
    return session.view


def run_listen(args: argparse.Namespace) -> int:
    """Handler of ``wmbus listen`` (see ``listen``)."""
    return listen(args)
