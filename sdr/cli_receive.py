"""What the receiving subcommands (``wmbus replay``, ``wmbus listen``) share.

Both run one ``ReceivePipeline`` over one sample stream and hand each reception to
the same places::

    flags --add_receive_arguments--> --modes --key/--keys --output --all --mqtt...
    ReceivePipeline (build_pipeline: the receiver's refusal becomes a SourceError)
        --ReceptionOutput.emit--> ReceptionWriter (stdout, a line each, flushed)
                               \\-> MqttPublisher (CRC-checked telegrams only)
    end of stream --report_session--> counters and MQTT counts on stderr

Only argparse is imported at module level: ``wmbus`` builds every subcommand's
parser at start-up, and ``--help`` must stay instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from sdr.cliutil import UsageError
from sdr.mqtt import add_mqtt_arguments

if TYPE_CHECKING:
    from datetime import datetime

    from sdr.mqtt_publish import MqttPublisher
    from sdr.output_rx import ReceptionWriter
    from sdr.pipeline import ReceivePipeline, ReceiverFactory
    from sdr.reception import Reception
    from stack.keyring import KeyRing

__all__ = [
    "OUTPUTS",
    "add_receive_arguments",
    "parse_frequency_flag",
    "phys_from_args",
    "build_pipeline",
    "ReceptionOutput",
    "report_session",
]

#: Values of ``--output`` (``sdr.output_rx.OUTPUT_FORMATS``, kept here so that building
#: the parser imports nothing of the receiver).
OUTPUTS: tuple[str, ...] = ("text", "jsonl", "rtlwmbus")


def add_receive_arguments(
    parser: argparse.ArgumentParser,
    add_key_options: Callable[[argparse.ArgumentParser], None],
    output_default: str | None = "text",
    output_help: str = "text (default), jsonl, or rtlwmbus (rtl_wmbus lines for "
    "wmbusmeters)",
) -> None:
    """Add ``--modes``, the key options, ``--output``, ``--all`` and the MQTT options.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The subcommand's parser.
    add_key_options : callable
        ``sdr.cli``'s adder of ``--key`` / ``--keys``.
    output_default : str or None
        Default of ``--output``; None lets the subcommand decide at run time.
    output_help : str
        Help text of ``--output``.
    """
    parser.add_argument(
        "--modes",
        default=None,
        metavar="S,T,C",
        help="receiver chains: S (868.3 MHz: S1, T2 downlink), T and C (868.95 MHz), "
        "C2 (869.525 MHz downlink); default all",
    )
    add_key_options(parser)
    parser.add_argument(
        "--output", choices=OUTPUTS, default=output_default, help=output_help
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="also output frames whose CRCs failed, marked as such",
    )
    add_mqtt_arguments(parser)


def parse_frequency_flag(text: str | None, flag: str) -> float | None:
    """A frequency or rate typed as ``868.95M``, ``2400k`` or ``2.4e6`` (None: absent).

    Raises
    ------
    UsageError
        For text that is not a frequency, naming ``flag``.
    """
    from sdr.units import parse_frequency

    if text is None:
        return None
    try:
        return parse_frequency(text)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def phys_from_args(args: argparse.Namespace) -> tuple[str, ...]:
    """The receiver chains ``--modes`` asks for (all when absent).

    Raises
    ------
    UsageError
        For a name that is not S, T, C or C2.
    """
    from sdr.reception import parse_phys

    try:
        return parse_phys(args.modes)
    except ValueError as exc:
        raise UsageError(f"--modes: {exc}") from None


def _warn_missing_channels(
    receiver: Any, phys: tuple[str, ...], err: TextIO, centre_flag: str
) -> None:
    """Say which asked-for chains have no channel inside the sampled band."""
    channels = getattr(receiver, "channels", None)
    if channels is None:
        return
    heard = {phy for phy, _ in channels}
    missing = [phy for phy in phys if phy not in heard]
    if missing:
        print(
            f"wmbus: warning: no channel of mode {', '.join(missing)} lies in the "
            f"sampled band (check {centre_flag} and --rate)",
            file=err,
            flush=True,
        )


def build_pipeline(
    args: argparse.Namespace,
    where: str,
    sample_rate_hz: float,
    center_freq_hz: float,
    *,
    keys: KeyRing | None,
    err: TextIO,
    receiver_factory: ReceiverFactory | None = None,
    centre_flag: str = "--center",
) -> ReceivePipeline:
    """The pipeline for a stream, warning when a mode named in --modes is out of band.

    Parameters
    ----------
    args : argparse.Namespace
        With ``modes`` and ``all``.
    where : str
        The source's name, for the error message.
    sample_rate_hz, center_freq_hz : float
        Of the stream, S/s and Hz.
    keys : KeyRing or None
        AES keys by meter id.
    err : TextIO
        Where the warning goes.
    receiver_factory : callable, optional
        Passed to ``ReceivePipeline`` (tests use a stand-in receiver).
    centre_flag : str
        The subcommand's flag for the centre frequency, named in the warning.

    Raises
    ------
    UsageError
        For ``--modes`` names that are not chains.
    SourceError
        When the receiver refuses the rate or centre (one line naming ``where``).
    """
    from sdr.pipeline import ReceivePipeline
    from stack.errors import SourceError

    phys = phys_from_args(args)
    try:
        pipeline = ReceivePipeline(
            sample_rate_hz,
            center_freq_hz,
            keys=keys,
            phys=phys,
            emit_bad_crc=args.all,
            receiver_factory=receiver_factory,
        )
    except ValueError as exc:  # the receiver refuses this rate or centre
        raise SourceError(f"{where}: {exc}") from None
    if args.modes is not None:  # asked for by name: say if one cannot be heard
        _warn_missing_channels(pipeline.receiver, phys, err, centre_flag)
    return pipeline


class ReceptionOutput:
    """Where each reception goes: a line writer and the MQTT publisher (both optional).

    Parameters
    ----------
    writer : ReceptionWriter or None
        Writes the ``--output`` line (None: no lines, e.g. the live table).
    publisher : MqttPublisher or None
        Gets every reception whose CRCs checked.

    Attributes
    ----------
    published : int
        Receptions handed to the publisher.
    """

    def __init__(
        self, writer: ReceptionWriter | None, publisher: MqttPublisher | None
    ) -> None:
        self.writer = writer
        self.publisher = publisher
        self.published = 0

    def emit(
        self,
        reception: Reception,
        start_time: datetime | None,
        wall_time_s: float | None = None,
    ) -> bool:
        """Write and publish one reception; return whether a line was written.

        Parameters
        ----------
        reception : Reception
            From the pipeline.
        start_time : datetime or None
            Wall-clock time of the stream's first sample (timezone-aware), for the
            line's and the message's timestamp.
        wall_time_s : float or None
            Unix time of the frame for MQTT's ``received_at`` (default: now).
        """
        from sdr.output_rx import reception_to_dict

        if self.publisher is not None and reception.crc_ok:
            self.publisher.publish(
                reception_to_dict(reception, start_time), wall_time_s
            )
            self.published += 1
        if self.writer is None:
            return False
        # The line's clock: replay's is fixed per file, listen's follows the source.
        self.writer.start_time = start_time
        return self.writer.write(reception)


def report_session(
    err: TextIO,
    pipeline: ReceivePipeline,
    publisher: MqttPublisher | None,
    extra_lines: tuple[str, ...] = (),
) -> None:
    """Print the counters on ``err``, close the publisher and print its counts.

    Parameters
    ----------
    err : TextIO
        Standard error of the command.
    pipeline : ReceivePipeline
        Whose counters are printed.
    publisher : MqttPublisher or None
        Closed here (waiting up to 5 s for the broker to confirm what is queued).
    extra_lines : tuple of str
        More lines after the counters (without the ``wmbus:`` prefix).
    """
    print(f"wmbus: {pipeline.counters.summary()}", file=err, flush=True)
    for line in extra_lines:
        print(f"wmbus: {line}", file=err, flush=True)
    if publisher is not None:
        counts = publisher.close(timeout_s=5.0)
        print(
            f"wmbus: MQTT {counts.published} published, {counts.dropped} dropped",
            file=err,
            flush=True,
        )
