"""IQ recordings in WAV files (SDR++, SDR#, HDSDR, SDR Console, SDRuno): the header.

A WAV file is a RIFF container: a 12-byte header, then chunks, each an 8-byte header
(four-character id, u32 little-endian payload size) and a payload padded to an even
length.  The parts read here::

    0   'RIFF' | 'RF64' | 'BW64'   u32 size of what follows (RF64: 0xFFFFFFFF)
    8   'WAVE'
    12  chunks, in any order ('ds64' first in RF64):
        'ds64'  u64 RIFF size, u64 data size, ...          (RF64/BW64 only)
        'fmt '  u16 format tag, u16 channels, u32 sample rate (Hz), u32 bytes/s,
                u16 block align (bytes per I/Q pair), u16 bits per sample;
                EXTENSIBLE (tag 0xFFFE) then has u16 extra size, u16 valid bits,
                u32 channel mask, and a 16-byte SubFormat GUID whose first u32 is
                the real tag (1 PCM, 3 float)
        'auxi'  SpectraVue's receiver chunk, written by SDR#, HDSDR and others:
                SYSTEMTIME start, SYSTEMTIME stop (8 u16 each), u32 centre (Hz), ...
        'data'  the samples, channel 1 (I) and channel 2 (Q) interleaved

Sources: Microsoft's WAVEFORMATEX / WAVEFORMATEXTENSIBLE, EBU Tech 3306 (RF64; ITU-R
BS.2088 BW64 has the same layout), the SpectraVue user guide's ``auxi`` layout as
Linrad's z_WAV_FORMATS.txt reproduces it, MS-DTYP 2.3.13 (SYSTEMTIME: 16 bytes, so
the centre frequency sits 32 bytes into the ``auxi`` payload).

Readable encodings and the sample format they are read as::

    PCM 8-bit          cu8    WAV's 8-bit PCM is unsigned with zero at 128; our cu8
                              takes zero at 127.5, half an LSB away, far below the
                              noise of any 8-bit capture
    PCM 16-bit         cs16   signed, little-endian
    IEEE float 32-bit  cf32   little-endian

The standard library's ``wave`` module is not used: Python 3.11's rejects float and
EXTENSIBLE files, which is what SDR++ and SDR Console write.
"""

from __future__ import annotations

import logging
import struct
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, NamedTuple

from sdr.source import open_data_file
from stack.errors import SourceError

__all__ = ["WavInfo", "read_wav_meta"]

log = logging.getLogger(__name__)

_RIFF_MAGICS = (b"RIFF", b"RF64", b"BW64")  # RF64: EBU Tech 3306; BW64: BS.2088
_WAVE_FORM = b"WAVE"
# A 32-bit size of all ones: "see ds64" in RF64, "unknown" from streaming writers.
_SIZE_UNKNOWN = 0xFFFFFFFF

# Format tags (Microsoft mmreg.h); the names only make the error messages precise.
_TAG_PCM = 0x0001
_TAG_FLOAT = 0x0003
_TAG_EXTENSIBLE = 0xFFFE
_TAG_NAMES = {
    0x0002: "Microsoft ADPCM",
    0x0006: "A-law",
    0x0007: "mu-law",
    0x0011: "IMA ADPCM",
    0x0055: "MPEG layer 3",
}
# KSDATAFORMAT_SUBTYPE_* GUIDs are the format tag followed by these 12 bytes, as the
# GUID is laid out in the file (Data2, Data3 little-endian, then Data4).
_SUBFORMAT_TAIL = bytes.fromhex("0000 1000 8000 00aa00389b71")

#: (format tag, bits per sample) -> our sample format.
_ENCODINGS = {(_TAG_PCM, 8): "cu8", (_TAG_PCM, 16): "cs16", (_TAG_FLOAT, 32): "cf32"}
_READABLE = "8- or 16-bit PCM, or 32-bit float"

_FMT_MIN_BYTES = 16  # WAVEFORMAT without cbSize
_FMT_EXTENSIBLE_BYTES = 40  # WAVEFORMATEXTENSIBLE
_AUXI_CENTRE_AT = 32  # two SYSTEMTIMEs (start, stop) of 16 bytes each


@dataclass(frozen=True, slots=True)
class WavInfo:
    """What a WAV file's header says about its samples.

    Attributes
    ----------
    path : Path
        The WAV file (header and samples are in the same file).
    sample_format : str
        ``cu8``, ``cs16`` or ``cf32``.
    sample_rate_hz : float or None
        From the fmt chunk; None if it says 0.
    center_freq_hz : float or None
        From an ``auxi`` chunk, if there is one and it gives a frequency.
    header_bytes, trailing_bytes : int
        Bytes before the first sample and after the last one.
    """

    path: Path
    sample_format: str
    sample_rate_hz: float | None
    center_freq_hz: float | None
    header_bytes: int
    trailing_bytes: int


class _Format(NamedTuple):
    sample_format: str
    sample_rate_hz: float | None
    block_align: int


class _Chunks(NamedTuple):
    """What the chunk walk found: payloads of the chunks we read, the data extent."""

    riff_size: int  # as declared (RF64: from ds64)
    fmt: bytes | None
    auxi: bytes | None
    data_offset: int | None  # of the data payload
    data_size: int  # as declared (RF64: from ds64); checked by _data_extent
    ds64_data_size: int | None  # RF64/BW64 only
    ended_short: bool  # no data chunk, and the last chunk runs past the end


def read_wav_meta(path: str | Path) -> WavInfo:
    """Read the header of an IQ recording in a WAV file (the samples stay on disk).

    Parameters
    ----------
    path : str or Path
        The ``.wav`` file.

    Returns
    -------
    WavInfo

    Raises
    ------
    SourceError
        If the file is missing or unreadable, is not a RIFF/RF64 WAVE file, has no
        fmt or data chunk, ends inside its header, has other than two channels (I
        and Q), an encoding other than 8/16-bit PCM or 32-bit float (the message
        names it), or no samples.  A data size that is unset (0 or 0xFFFFFFFF) or
        runs past the end of the file, as a recorder stopped before finishing the
        file leaves it, is not an error: the samples run to the end of the file,
        and a warning is logged.
    """
    wav_path = Path(path)
    fh, file_size = open_data_file(wav_path)
    with fh:
        chunks = _walk_chunks(wav_path, fh, file_size)
    if chunks.fmt is None:
        what = "ends inside its header" if chunks.ended_short else "has no fmt chunk"
        raise SourceError(f"{wav_path}: WAV file {what}")
    if chunks.data_offset is None:
        what = "ends inside its header" if chunks.ended_short else "has no data chunk"
        raise SourceError(f"{wav_path}: WAV file {what}")
    fmt = _parse_fmt(wav_path, chunks.fmt)
    start = chunks.data_offset
    n_bytes = _data_extent(wav_path, chunks, start, file_size, fmt.block_align)
    if n_bytes == 0:
        raise SourceError(f"{wav_path}: the WAV data chunk is empty (no samples)")
    return WavInfo(
        path=wav_path,
        sample_format=fmt.sample_format,
        sample_rate_hz=fmt.sample_rate_hz,
        center_freq_hz=_auxi_centre(chunks.auxi),
        header_bytes=start,
        trailing_bytes=file_size - start - n_bytes,
    )


def _read_at(path: Path, fh: BinaryIO, offset: int, n_bytes: int) -> bytes:
    try:
        fh.seek(offset)
        return fh.read(n_bytes)
    except OSError as exc:
        raise SourceError(f"{path}: cannot read: {exc.strerror or exc}") from exc


def _walk_chunks(path: Path, fh: BinaryIO, file_size: int) -> _Chunks:
    """Visit the chunk headers in order, seeking over payloads; keep what we read."""
    riff_size, is_rf64 = _read_riff_header(path, fh)
    found: dict[bytes, bytes] = {}
    data_offset, data_size, ds64_data_size = None, 0, None
    offset = 12
    while offset + 8 <= file_size:
        chunk_id, size = struct.unpack("<4sI", _read_at(path, fh, offset, 8))
        payload = offset + 8
        if chunk_id == b"data":
            if size == _SIZE_UNKNOWN and ds64_data_size is not None:
                size = ds64_data_size
            data_offset, data_size = payload, size
            if _data_runs_to_end(size, file_size - payload, ds64_data_size):
                break  # nothing after the samples can be found
        elif chunk_id in (b"fmt ", b"auxi", b"ds64") and payload + size <= file_size:
            found[chunk_id] = _read_at(path, fh, payload, size)
            if chunk_id == b"ds64" and is_rf64 and size >= 16:
                riff_size, ds64_data_size = struct.unpack_from("<QQ", found[chunk_id])
        offset = payload + size + (size & 1)
    return _Chunks(
        riff_size=riff_size,
        fmt=found.get(b"fmt "),
        auxi=found.get(b"auxi"),
        data_offset=data_offset,
        data_size=data_size,
        ds64_data_size=ds64_data_size,
        # A missing pad byte after the last chunk is common and harmless.
        ended_short=data_offset is None and not file_size <= offset <= file_size + 1,
    )


def _read_riff_header(path: Path, fh: BinaryIO) -> tuple[int, bool]:
    """(RIFF size, is RF64/BW64) from the first 12 bytes, or a SourceError."""
    head = _read_at(path, fh, 0, 12)
    if not head:
        raise SourceError(f"{path}: file is empty (no samples)")
    if head[:4] not in _RIFF_MAGICS:
        raise SourceError(f"{path}: not a WAV file (no RIFF header)")
    if len(head) < 12:
        raise SourceError(f"{path}: WAV file ends inside its header")
    if head[8:] != _WAVE_FORM:
        raise SourceError(f"{path}: a RIFF file, but not WAVE audio ({head[8:]!r})")
    riff_size: int = struct.unpack_from("<I", head, 4)[0]
    return riff_size, head[:4] != b"RIFF"


def _parse_fmt(path: Path, body: bytes) -> _Format:
    """Sample format, rate and block size from the fmt chunk, or a SourceError."""
    if len(body) < _FMT_MIN_BYTES:
        raise SourceError(
            f"{path}: WAV fmt chunk too short ({len(body)} bytes, "
            f"{_FMT_MIN_BYTES} expected)"
        )
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", body)
    if tag == _TAG_EXTENSIBLE:
        tag = _extensible_tag(path, body)
    if channels != 2:
        raise SourceError(
            f"{path}: not an IQ recording ({channels} channel"
            f"{'' if channels == 1 else 's'}; I/Q needs 2)"
        )
    sample_format = _ENCODINGS.get((tag, bits))
    if sample_format is None:
        raise SourceError(
            f"{path}: WAV samples in {_encoding_name(tag, bits)} are not read; "
            f"IQ WAV files are read in {_READABLE}"
        )
    if block_align != 2 * bits // 8:
        raise SourceError(
            f"{path}: inconsistent WAV fmt chunk: block align {block_align} bytes "
            f"for 2 channels of {bits} bits"
        )
    return _Format(sample_format, float(rate) if rate else None, block_align)


def _extensible_tag(path: Path, body: bytes) -> int:
    """The real format tag of WAVE_FORMAT_EXTENSIBLE, from its SubFormat GUID."""
    if len(body) < _FMT_EXTENSIBLE_BYTES:
        raise SourceError(
            f"{path}: WAV fmt chunk too short for WAVE_FORMAT_EXTENSIBLE "
            f"({len(body)} bytes, {_FMT_EXTENSIBLE_BYTES} expected)"
        )
    subformat = body[24:40]
    if subformat[4:] != _SUBFORMAT_TAIL:
        raise SourceError(
            f"{path}: WAV samples in SubFormat {uuid.UUID(bytes_le=subformat)} are "
            f"not read; IQ WAV files are read in {_READABLE}"
        )
    tag: int = struct.unpack_from("<I", subformat)[0]
    return tag


def _encoding_name(tag: int, bits: int) -> str:
    if tag == _TAG_PCM:
        return f"{bits}-bit PCM"
    if tag == _TAG_FLOAT:
        return f"{bits}-bit float"
    return _TAG_NAMES.get(tag, f"format tag 0x{tag:04x}")


def _data_runs_to_end(declared: int, available: int, ds64_size: int | None) -> bool:
    """Whether the data chunk's size is unusable, so its samples run to the end.

    Unset (0, or all ones without a ds64), past the end of the file (a recorder
    killed before it rewrote the sizes), or a plain RIFF file longer than 4 GiB,
    whose 32-bit size can only have wrapped around.
    """
    if ds64_size is None and available > _SIZE_UNKNOWN:
        return True
    return not 0 < declared <= available


def _data_extent(
    path: Path, chunks: _Chunks, data_offset: int, file_size: int, block_align: int
) -> int:
    """Bytes of samples: the declared size if it is usable, else up to end of file."""
    available = file_size - data_offset
    declared = chunks.data_size
    if not _data_runs_to_end(declared, available, chunks.ds64_data_size):
        return declared
    if declared == 0 and chunks.riff_size + 8 == file_size:
        return 0  # a finished file (its RIFF size is right) with no samples
    # Take what is there, up to the last whole I/Q pair (a cut can fall inside one).
    usable = available - available % block_align
    if usable:
        log.warning(
            "%s: the WAV data size (%d bytes) is unset, wrapped or runs past the end "
            "of the file; reading the %d bytes up to the end (an unfinished "
            "recording?)",
            path,
            declared,
            usable,
        )
    return usable


def _auxi_centre(body: bytes | None) -> float | None:
    """Centre frequency in Hz from an ``auxi`` payload; None if absent or zero."""
    if body is None or len(body) < _AUXI_CENTRE_AT + 4:
        return None
    centre_hz: int = struct.unpack_from("<I", body, _AUXI_CENTRE_AT)[0]
    return float(centre_hz) if centre_hz else None
