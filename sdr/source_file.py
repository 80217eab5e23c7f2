"""Recorded IQ files as a sample source: raw cu8/cs8/cs16/cf32, SigMF and WAV.

What the file is, in order of precedence::

    format  --format > extension (.cu8 .cs8 .cs16 .cf32 .complex16u/s .cfile
                       .sigmf-meta .sigmf-data .wav), gqrx name     > "give --format"
    rate    --rate   > SigMF core:sample_rate | WAV fmt chunk
                     > file name (rtl_433, gqrx)                    > "give --rate"
    centre  --center > SigMF core:frequency | WAV auxi chunk
                     > file name (rtl_433, gqrx, SDR++, SDR#, ...)  > "give --center"

A WAV file's sample format (8/16-bit PCM, 32-bit float) is in its fmt chunk;
``--format wav`` reads a file of any name as WAV.

The file is read in chunks (memory stays flat whatever its length).  A file that ends
inside a sample (an odd byte count for cu8) delivers every complete sample, then
raises ``sdr.source.TruncatedError`` naming the leftover byte count: nothing is lost,
and the damage is reported.  ``-`` reads standard input (raw formats only; give all
three flags): SigMF and WAV need the file.
"""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path
from typing import Any, NamedTuple, cast

from sdr.annotation import Annotation
from sdr.filename import FILE_FORMATS, file_format_from_path, parse_filename
from sdr.sigmf_meta import read_sigmf_meta
from sdr.source import DEFAULT_CHUNK_SAMPLES, SampleSource, open_data_file
from sdr.units import format_frequency
from sdr.wav_meta import read_wav_meta
from stack.errors import SourceError

__all__ = ["FileSource"]

log = logging.getLogger(__name__)

_STDIN = "-"
# Formats whose metadata must be read before the samples, so not from a pipe.
_NEEDS_FILE = {"sigmf": "SigMF", "wav": "WAV"}


def _resolve_format(path: str, file_format: str | None) -> str:
    """The file's format from ``--format`` or its extension, else a SourceError."""
    if file_format is not None:
        if file_format not in FILE_FORMATS:
            raise SourceError(
                f"unknown format {file_format!r}; valid: {', '.join(FILE_FORMATS)}"
            )
        if path == _STDIN and file_format in _NEEDS_FILE:
            raise SourceError(
                f"{_NEEDS_FILE[file_format]} cannot be read from standard input; "
                "give the file"
            )
        return file_format
    if path == _STDIN:
        raise SourceError(
            "reading standard input needs --format (cu8, cs8, cs16 or cf32)"
        )

    found = file_format_from_path(path)
    if found is not None:
        return found
    if path.lower().endswith(".sigmf"):
        raise SourceError(
            f"{path}: SigMF archives are not read directly; unpack it "
            f"(tar xf {path}) and give the .sigmf-meta file"
        )
    if not Path(path).exists():
        raise SourceError(f"{path}: no such file")
    raise SourceError(
        f"{path}: cannot tell the sample format from the file name; give --format "
        f"({', '.join(FILE_FORMATS)})"
    )


class _FileFacts(NamedTuple):
    """What the file's name or metadata says, before any flag overrides it."""

    data_path: Path | None
    sample_format: str
    sample_rate_hz: float | None
    center_freq_hz: float | None
    header_bytes: int = 0
    trailing_bytes: int = 0
    annotations: tuple[Annotation, ...] = ()


def _describe(path: str, fmt: str) -> _FileFacts:
    if fmt == "sigmf":
        info = read_sigmf_meta(path)
        return _FileFacts(
            info.data_path,
            info.sample_format,
            info.sample_rate_hz,
            info.center_freq_hz,
            info.header_bytes,
            info.trailing_bytes,
            info.annotations,
        )
    named = parse_filename(path)
    if fmt == "wav":
        wav = read_wav_meta(path)
        return _FileFacts(
            wav.path,
            wav.sample_format,
            _first_known(wav.sample_rate_hz, named.sample_rate_hz),
            _first_known(wav.center_freq_hz, named.center_freq_hz),
            wav.header_bytes,
            wav.trailing_bytes,
        )
    return _FileFacts(
        None if path == _STDIN else Path(path),
        fmt,
        named.sample_rate_hz,
        named.center_freq_hz,
    )


class FileSource(SampleSource):
    """Samples from a recording (raw IQ file, SigMF pair, WAV, or standard input).

    Parameters
    ----------
    path : str or Path
        The file; for SigMF the ``.sigmf-meta``, the ``.sigmf-data`` or their stem
        (with ``file_format="sigmf"``); ``"-"`` for standard input.
    file_format : str, optional
        One of ``cu8``, ``cs8``, ``cs16``, ``cf32``, ``sigmf``, ``wav``; default
        from the extension (or a gqrx file name).
    sample_rate_hz : float, optional
        Overrides metadata and file name, in samples per second.
    center_freq_hz : float, optional
        Overrides metadata and file name, in Hz.
    chunk_samples : int
        Default block size of ``read()`` and iteration, in samples.

    Attributes
    ----------
    path : Path or None
        The data file (``None`` for standard input).
    n_samples : int or None
        Complete samples in the file, when its size is known.
    annotations : list of Annotation
        SigMF annotations (empty for raw and WAV files).

    Raises
    ------
    SourceError
        Missing, empty or unreadable file; unknown format; SigMF datatype or WAV
        encoding we do not read; sample rate or centre frequency that cannot be
        inferred (the message names the flag to give).
    """

    def __init__(
        self,
        path: str | Path,
        *,
        file_format: str | None = None,
        sample_rate_hz: float | None = None,
        center_freq_hz: float | None = None,
        chunk_samples: int = DEFAULT_CHUNK_SAMPLES,
    ):
        text = str(path)
        facts = _describe(text, _resolve_format(text, file_format))
        self.annotations: list[Annotation] = list(facts.annotations)
        data_path, sample_format = facts.data_path, facts.sample_format
        start, end_trim = facts.header_bytes, facts.trailing_bytes
        rate, centre = facts.sample_rate_hz, facts.center_freq_hz
        rate = sample_rate_hz if sample_rate_hz is not None else rate
        centre = center_freq_hz if center_freq_hz is not None else centre
        self.path = data_path
        # Open first: "no such file" says more than "cannot infer the rate".
        self._fh, self._end = self._open(data_path, start, end_trim)
        try:
            super().__init__(
                sample_rate_hz=_require(text, rate, "sample rate", "--rate", "2.4M"),
                center_freq_hz=_require(
                    text, centre, "centre frequency", "--center", "868.95M"
                ),
                name=text,
                sample_format=sample_format,
                chunk_samples=chunk_samples,
            )
        except BaseException:
            self._close()
            raise
        self.n_samples = (
            None if self._end is None else (self._end - start) // self._sample_size
        )
        self._log_opened(start)

    @classmethod
    def from_spec(cls, arg: str, **options: Any) -> FileSource:
        """Open ``file:ARG`` (see the class parameters for ``options``)."""
        if not arg:
            raise SourceError("file source needs a path: file:PATH")
        return cls(arg, **options)

    @staticmethod
    def _open(
        data_path: Path | None, start: int, end_trim: int
    ) -> tuple[io.BufferedIOBase, int | None]:
        """Open and position the data; return it and its end offset (None: unknown)."""
        if data_path is None:
            return cast(io.BufferedIOBase, sys.stdin.buffer), None
        fh, size = open_data_file(data_path)
        end = size - end_trim
        if size == 0 or end <= start:
            fh.close()
            raise SourceError(f"{data_path}: file is empty (no samples)")
        if start:
            fh.seek(start)
        return fh, end

    def _log_opened(self, start: int) -> None:
        log.info(
            "%s: %s, %s S/s, centre %s Hz, %s samples",
            self.name,
            self.sample_format,
            format_frequency(self.sample_rate_hz, ""),
            format_frequency(self.center_freq_hz, ""),
            self.n_samples,
        )
        if self._end is not None and (self._end - start) % self._sample_size:
            log.warning(
                "%s: %d byte(s) after the last complete sample; the file is truncated",
                self.name,
                (self._end - start) % self._sample_size,
            )

    def _read_raw(self, n_bytes: int) -> bytes | bytearray | memoryview:
        if self._end is not None:
            n_bytes = max(0, min(n_bytes, self._end - self._fh.tell()))
            if not n_bytes:
                return b""
        buf = bytearray(n_bytes)
        n_read = self._fh.readinto(buf)
        # A writable buffer lets dsp.convert reinterpret cf32 without a copy.
        return memoryview(buf)[: n_read or 0]

    def _close(self) -> None:
        if self.path is not None:
            self._fh.close()

    @property
    def duration_s(self) -> float | None:
        """Length of the recording in seconds, when the file size is known."""
        return None if self.n_samples is None else self.n_samples / self.sample_rate_hz


def _first_known(*values: float | None) -> float | None:
    """The first value that is not None (metadata before file name)."""
    return next((v for v in values if v is not None), None)


def _require(
    name: str, value: float | None, what: str, flag: str, example: str
) -> float:
    """``value`` if known (a rate: positive); else a SourceError naming the flag."""
    if value is None:
        raise SourceError(
            f"{name}: cannot infer the {what} (not in the file name or metadata); "
            f"give {flag}, e.g. {flag} {example}"
        )
    if what == "sample rate" and not value > 0:
        raise SourceError(f"{name}: {what} must be positive, got {value}; fix {flag}")
    return value
