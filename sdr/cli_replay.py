"""``wmbus replay``: receive every telegram in a recorded IQ file.

Only argparse is imported at module level (the parser is built for every ``wmbus``
call); the receiver and its numba kernels load when the command runs.

What comes out where::

    stdout   one line per telegram in the --output format (flushed per line)
    stderr   a progress bar (on a terminal, for files over 2 s), then the counters:
             "wmbus: 7 telegrams (7 decoded, 0 no key, ...), 0 CRC failed"

Exit status: 0 when the whole file was read, whatever was found in it (even 0
telegrams); 1 for a file that cannot be used (missing, empty, unreadable, unknown
format or datatype, rate or centre not inferable: one line saying what to do) and
for a truncated file, after the telegrams in the part that was there; 2 for bad
flags.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from sdr.cli_receive import add_receive_arguments, parse_frequency_flag

if TYPE_CHECKING:
    from datetime import datetime

    from sdr.pipeline import ReceiverFactory
    from sdr.source_file import FileSource

__all__ = ["add_replay_parser", "run_replay", "replay"]

_FILE_FORMATS = ("cu8", "cs8", "cs16", "cf32", "sigmf", "wav")
# A progress bar is worth drawing only for files that take a while.
_PROGRESS_MIN_S = 2.0
_PROGRESS_EVERY_S = 0.2


def add_replay_parser(sub: argparse._SubParsersAction, add_key_options) -> None:
    """Add the ``replay`` subcommand to the ``wmbus`` parser."""
    parser = sub.add_parser(
        "replay",
        help="receive the telegrams in an IQ recording",
        description=(
            "Receive and decode every wM-Bus telegram in a recorded IQ file (raw "
            "cu8/cs8/cs16/cf32, SigMF, or WAV from SDR++, SDR#, HDSDR and others), "
            "on every channel the recording covers. Sample rate, centre frequency "
            "and format come from SigMF metadata, the WAV header, or the file name "
            "(rtl_433's NAME_868.95M_2400k.cu8, gqrx's, SDR++'s) unless given."
        ),
    )
    parser.add_argument(
        "path",
        metavar="PATH",
        help="recording (.cu8 .cs8 .cs16 .cf32 .sigmf-meta .wav, gqrx .raw); "
        "- for stdin",
    )
    parser.add_argument("--rate", help="sample rate, e.g. 2.4M or 1600k")
    parser.add_argument("--center", help="centre frequency, e.g. 868.95M")
    parser.add_argument(
        "--format",
        dest="file_format",
        choices=_FILE_FORMATS,
        help="sample format when the file name does not say it",
    )
    add_receive_arguments(parser, add_key_options)
    parser.set_defaults(handler=run_replay)


def _sigmf_start_time(source: FileSource) -> datetime | None:
    """``core:datetime`` of the first SigMF capture, if the recording is SigMF."""
    import json
    from datetime import UTC, datetime

    from sdr.sigmf_meta import sigmf_paths

    if source.path is None or source.path.suffix.lower() != ".sigmf-data":
        return None
    try:
        meta = json.loads(sigmf_paths(source.path)[0].read_text(encoding="utf-8"))
        text = meta["captures"][0]["core:datetime"]
        stamp = datetime.fromisoformat(text)
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None  # no usable datetime: the rtlwmbus clock starts at the epoch
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


class _Progress:
    """A one-line progress bar on a terminal, redrawn at most every 0.2 s."""

    def __init__(self, stream: TextIO, n_samples: int, sample_rate_hz: float) -> None:
        self.stream = stream
        self.n_samples = n_samples
        self.sample_rate_hz = sample_rate_hz
        self._last = 0.0
        self._drawn = False

    @classmethod
    def for_source(cls, source: FileSource, stream: TextIO) -> _Progress | None:
        """A bar when ``stream`` is a terminal and the file is longer than 2 s."""
        duration_s = source.duration_s
        if duration_s is None or duration_s <= _PROGRESS_MIN_S:
            return None
        if not (hasattr(stream, "isatty") and stream.isatty()):
            return None
        return cls(stream, source.n_samples or 0, source.sample_rate_hz)

    def __call__(self, samples_read: int) -> None:
        now = time.monotonic()
        if now - self._last < _PROGRESS_EVERY_S and samples_read < self.n_samples:
            return
        self._last = now
        share = min(samples_read / max(self.n_samples, 1), 1.0)
        filled = round(30 * share)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {100 * share:3.0f}% "
            f"{samples_read / self.sample_rate_hz:.1f}/"
            f"{self.n_samples / self.sample_rate_hz:.1f} s"
        )
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Erase the bar so that the summary starts on a clean line."""
        if self._drawn:
            self.stream.write("\r" + " " * 60 + "\r")
            self.stream.flush()


def _open(args: argparse.Namespace) -> FileSource:
    from sdr.source_file import FileSource

    return FileSource(
        args.path,
        file_format=args.file_format,
        sample_rate_hz=parse_frequency_flag(args.rate, "--rate"),
        center_freq_hz=parse_frequency_flag(args.center, "--center"),
    )


def replay(
    args: argparse.Namespace,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    receiver_factory: ReceiverFactory | None = None,
) -> int:
    """Run ``wmbus replay`` with parsed arguments; return the exit status.

    Parameters
    ----------
    args : argparse.Namespace
        As ``add_replay_parser`` defines them.
    stdout, stderr : TextIO, optional
        Streams for telegrams and for progress and counters (default the sys ones).
    receiver_factory : callable, optional
        Passed to ``ReceivePipeline`` (tests use a stand-in receiver).

    Raises
    ------
    UsageError
        For a flag value that does not parse (--rate, --center, --modes).
    SourceError
        For a file that cannot be read, after the telegrams of a truncated one.
    KeyFormatError
        For a malformed --key or key file.
    """
    from sdr.cli_receive import (
        ReceptionOutput,
        build_pipeline,
        phys_from_args,
        report_session,
    )
    from sdr.keys import keyring_from_options
    from sdr.mqtt_publish import publisher_from_args
    from sdr.output_rx import ReceptionWriter
    from sdr.pipeline import run_pipeline
    from sdr.reception import Reception

    out = stdout or sys.stdout
    err = stderr or sys.stderr
    phys_from_args(args)  # a bad --modes is a usage error before the file is opened
    keys = keyring_from_options(args.key, args.keys)
    with _open(args) as source:
        pipeline = build_pipeline(
            args,
            source.name,
            source.sample_rate_hz,
            source.center_freq_hz,
            keys=keys,
            err=err,
            receiver_factory=receiver_factory,
        )
        start_time = _sigmf_start_time(source)
        publisher = publisher_from_args(
            args,
            lambda: {**pipeline.counters.as_dict(), "samples": source.samples_read},
        )
        output = ReceptionOutput(
            ReceptionWriter(out, args.output, start_time), publisher
        )
        progress = _Progress.for_source(source, err)

        def emit(reception: Reception) -> bool:
            return output.emit(reception, start_time)

        try:
            run_pipeline(source, pipeline, emit, progress)
        finally:
            if progress is not None:
                progress.close()
            report_session(err, pipeline, publisher)
    return 0


def run_replay(args: argparse.Namespace) -> int:
    """Handler of ``wmbus replay`` (see ``replay``)."""
    return replay(args)
