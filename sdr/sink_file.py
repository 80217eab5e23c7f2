"""Recordings as a sample sink: raw cu8/cs8/cs16/cf32 files and SigMF pairs.

Nothing appears under the final name until the recording is complete::

    write()   ->  DIR/.NAME.XXXX.part               (hidden temporary, same directory)
    close()   ->  os.replace(temp, DIR/NAME)        (atomic on one file system)
    abort()   ->  temp removed, NAME untouched      (also on an exception in ``with``)

A SigMF recording writes ``NAME.sigmf-data`` the same way, then builds and validates
``NAME.sigmf-meta`` (SHA-512 of the data, one annotation per ``annotate()`` call) and
renames it into place last: a ``.sigmf-meta`` exists only beside its complete data.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from pathlib import Path
from typing import Any, BinaryIO

from dsp.convert import SAMPLE_FORMATS
from sdr.filename import WRITTEN_FORMATS, file_format_from_path
from sdr.sigmf_meta import build_sigmf_meta, sigmf_paths
from sdr.sink import SampleSink
from stack.errors import SinkError

__all__ = ["FileSink"]

log = logging.getLogger(__name__)

#: Sample format of a SigMF recording when none is given: cf32 keeps every bit the
#: transmitter computed (cu8 would add quantisation noise to ground-truth files).
DEFAULT_SIGMF_FORMAT = "cf32"


def _resolve_formats(
    path: str, file_format: str | None, sample_format: str | None
) -> tuple[str, str]:
    """(container, sample format) from the arguments or the extension."""
    container = file_format or file_format_from_path(path)
    if container is None:
        raise SinkError(
            f"{path}: cannot tell the format from the file name; give --format "
            f"({', '.join(WRITTEN_FORMATS)}) or use an extension like .cu8 or "
            ".sigmf-meta"
        )
    if container == "wav":
        raise SinkError(
            f"{path}: WAV recordings are read, not written; write .cu8, .cs16, .cf32 "
            "or .sigmf-meta (SigMF keeps the centre frequency and the annotations)"
        )
    if container not in WRITTEN_FORMATS:
        raise SinkError(
            f"unknown format {container!r}; valid: {', '.join(WRITTEN_FORMATS)}"
        )
    if container == "sigmf":
        samples = sample_format or DEFAULT_SIGMF_FORMAT
        if samples not in SAMPLE_FORMATS:
            raise SinkError(
                f"unknown sample format {samples!r}; valid: {', '.join(SAMPLE_FORMATS)}"
            )
        return container, samples
    if sample_format not in (None, container):
        raise SinkError(
            f"{path}: a {container} file cannot hold {sample_format} samples"
        )
    return container, container


def _temp_file(final: Path) -> tuple[BinaryIO, Path]:
    """A hidden temporary file beside ``final`` (same file system, so rename is atomic).

    Created with mode 0o666 less the umask, like any new file, so the committed
    recording gets the usual permissions (``tempfile.mkstemp`` would make it 0o600).
    """
    temp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.part")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise SinkError(f"{final}: cannot create: {exc.strerror or exc}") from exc
    return os.fdopen(fd, "wb"), temp


class FileSink(SampleSink):
    """Write samples to a recording, atomically.

    Parameters
    ----------
    path : str or Path
        Output file.  For SigMF the ``.sigmf-meta`` or ``.sigmf-data`` name, or a
        stem with ``file_format="sigmf"``.
    sample_rate_hz : float
        Samples per second (> 0).
    center_freq_hz : float
        Centre frequency in Hz.
    file_format : str, optional
        ``cu8``, ``cs8``, ``cs16``, ``cf32`` or ``sigmf``; default from the extension.
    sample_format : str, optional
        Sample format inside a SigMF recording (default cf32); for raw files it must
        match ``file_format`` if given.
    overwrite : bool
        Replace an existing file on commit (default); if False, refuse up front.
    description : str
        ``core:description`` of a SigMF recording.

    Raises
    ------
    SinkError
        Unknown format, existing file with ``overwrite=False``, or a directory that
        does not exist or cannot be written.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        sample_rate_hz: float,
        center_freq_hz: float,
        file_format: str | None = None,
        sample_format: str | None = None,
        overwrite: bool = True,
        description: str = "",
    ):
        text = str(path)
        container, samples = _resolve_formats(text, file_format, sample_format)
        self.is_sigmf = container == "sigmf"
        self.supports_annotations = self.is_sigmf
        if self.is_sigmf:
            self.meta_path: Path | None
            self.meta_path, self.path = sigmf_paths(text)
        else:
            self.meta_path, self.path = None, Path(text)
        for final in (self.path, self.meta_path):
            if final is not None and not overwrite and final.exists():
                raise SinkError(f"{final}: exists; remove it or allow overwriting")
        super().__init__(
            sample_rate_hz=sample_rate_hz,
            center_freq_hz=center_freq_hz,
            name=text,
            sample_format=samples,
        )
        self._description = description
        self._sha512 = hashlib.sha512() if self.is_sigmf else None
        self._fh, self._temp_path = _temp_file(self.path)

    @classmethod
    def from_spec(cls, arg: str, **options: Any) -> FileSink:
        """Open ``file:ARG`` (see the class parameters for ``options``)."""
        if not arg:
            raise SinkError("file sink needs a path: file:PATH")
        return cls(arg, **options)

    def _write_raw(self, data: bytes) -> None:
        self._fh.write(data)
        if self._sha512 is not None:
            self._sha512.update(data)

    def _close(self) -> None:
        self._check_annotations()
        self._fh.close()
        if self.meta_path is None or self._sha512 is None:  # a raw IQ file
            os.replace(self._temp_path, self.path)
            return
        meta_text = build_sigmf_meta(
            sample_format=self.sample_format,
            sample_rate_hz=self.sample_rate_hz,
            center_freq_hz=self.center_freq_hz,
            annotations=self.annotations,
            sha512_hex=self._sha512.hexdigest(),
            description=self._description,
        )
        meta_fh, meta_temp = _temp_file(self.meta_path)
        try:
            with meta_fh:
                meta_fh.write(meta_text.encode())
            # Data first, metadata last: the .sigmf-meta marks a complete recording.
            os.replace(self._temp_path, self.path)
            os.replace(meta_temp, self.meta_path)
        except BaseException:
            with contextlib.suppress(OSError):
                meta_temp.unlink()
            raise

    def _check_annotations(self) -> None:
        for item in self.annotations:
            end = item.sample_start + (item.sample_count or 0)
            if end > self.samples_written:
                raise SinkError(
                    f"{self.name}: annotation {item.label!r} covers samples "
                    f"{item.sample_start}..{end - 1}, but only {self.samples_written} "
                    "were written"
                )

    def _abort(self) -> None:
        self._fh.close()
        with contextlib.suppress(FileNotFoundError):
            self._temp_path.unlink()

    def __del__(self) -> None:
        # A sink dropped without close() must not leave its hidden temporary behind.
        if getattr(self, "_temp_path", None) is not None and not self.closed:
            log.warning("%s: never closed; discarding the partial recording", self.name)
            self.abort()
