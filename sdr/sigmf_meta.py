"""SigMF metadata of wM-Bus recordings: datatypes, telegram annotations, read and build.

A SigMF recording is a pair ``NAME.sigmf-data`` (raw samples) + ``NAME.sigmf-meta``
(JSON).  We read and write the parts that matter here::

    global       core:datatype     cu8 | ci8 | ci16_le | cf32_le
                                   (our cu8 | cs8 | cs16 | cf32)
                 core:sample_rate  samples per second
                 core:extensions   [{"name": "wmbus", "version": "1.0.0",
                                     "optional": true}]
                 core:offset, core:num_channels, core:trailing_bytes, core:dataset
    captures[0]  core:frequency    centre frequency, Hz; core:header_bytes
    annotations  one per telegram (keys in ``sdr.annotation``), sorted by start

Reading parses the JSON here, only those fields, each checked as it is used: the
``sigmf`` package (and jsonschema under it) costs ~5 MB of memory and a quarter of a
second to import, which every ``wmbus replay`` would pay.  Writing goes through
``sigmf``, imported then, which validates the result against the SigMF schema.

Samples are scaled by ``dsp.convert`` (cu8 offset 127.5), not by the sigmf package's
own reader (offset 128), so a cu8 SigMF file reads exactly like the same bytes as .cu8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sdr.annotation import (
    RECORDER,
    Annotation,
    annotation_from_sigmf,
    annotation_to_sigmf,
)
from stack.errors import SinkError, SourceError

__all__ = [
    "SIGMF_DATATYPES",
    "WMBUS_EXTENSION",
    "SigmfInfo",
    "read_sigmf_meta",
    "build_sigmf_meta",
    "sigmf_paths",
]

#: SigMF datatype -> our sample format (SigMF spec "Dataset Format"; 8-bit types carry
#: no byte order).
SIGMF_DATATYPES: dict[str, str] = {
    "cu8": "cu8",
    "ci8": "cs8",
    "ci16_le": "cs16",
    "cf32_le": "cf32",
}
_DATATYPE_OF_FORMAT = {fmt: dt for dt, fmt in SIGMF_DATATYPES.items()}

#: Declaration of our annotation namespace (SigMF "Extension Namespaces").
WMBUS_EXTENSION: dict[str, Any] = {
    "name": "wmbus",
    "version": "1.0.0",
    "optional": True,
}

_META_EXT = ".sigmf-meta"
_DATA_EXT = ".sigmf-data"
# Extensions that name one file of a SigMF recording (the spec's archive and
# collection included), stripped to find the recording's stem.
_SIGMF_EXTS = (_META_EXT, _DATA_EXT, ".sigmf", ".sigmf-collection")


@dataclass(frozen=True, slots=True)
class SigmfInfo:
    """What a ``.sigmf-meta`` file says about its dataset.

    Attributes
    ----------
    meta_path, data_path : Path
        The metadata file and the dataset it describes.
    sample_format : str
        Our name of the datatype (``cu8``, ``cs8``, ``cs16``, ``cf32``).
    sample_rate_hz, center_freq_hz : float or None
        ``core:sample_rate`` and the first capture's ``core:frequency``, if present.
    header_bytes, trailing_bytes : int
        Bytes to skip at the start and end of a non-conforming dataset.
    annotations : tuple of Annotation
        In file order, indices relative to the first sample of the dataset.
    """

    meta_path: Path
    data_path: Path
    sample_format: str
    sample_rate_hz: float | None
    center_freq_hz: float | None
    header_bytes: int
    trailing_bytes: int
    annotations: tuple[Annotation, ...]


def sigmf_paths(path: str | Path) -> tuple[Path, Path]:
    """``(meta_path, data_path)`` of the conforming pair named by ``path``.

    ``path`` may name the ``.sigmf-meta`` file, the ``.sigmf-data`` file, or their
    common stem.  Only a SigMF extension is replaced: a stem like
    ``rec_868.95M_2400k`` keeps its dots.
    """
    given = Path(path)
    stem = given.name
    if given.suffix in _SIGMF_EXTS:
        stem = stem[: -len(given.suffix)]
    return given.with_name(stem + _META_EXT), given.with_name(stem + _DATA_EXT)


def _load_meta(meta_path: Path) -> dict[str, Any]:
    """The parsed metadata: a JSON object with a ``global`` object in it."""
    if not meta_path.is_file():
        raise SourceError(f"{meta_path}: no such SigMF metadata file")
    try:
        with meta_path.open("rb") as fh:
            metadata = json.load(fh)
    except (OSError, ValueError) as exc:
        raise SourceError(f"{meta_path}: not readable SigMF metadata: {exc}") from exc
    if not isinstance(metadata, dict) or not isinstance(metadata.get("global"), dict):
        raise SourceError(
            f"{meta_path}: not readable SigMF metadata: no 'global' object"
        )
    return metadata


def _datatype_format(meta_path: Path, datatype: Any) -> str:
    if datatype is None:
        raise SourceError(f"{meta_path}: no core:datatype in the global object")
    text = str(datatype).lower()
    if text in ("cu8_le", "cu8_be", "ci8_le", "ci8_be"):
        text = text[:-3]  # byte order means nothing for 8-bit components
    elif text in ("ci16", "cf32"):
        # No byte order given: read as native, i.e. little-endian on every host we
        # run on (the sigmf package does the same).
        text += "_le"
    if text not in SIGMF_DATATYPES:
        raise SourceError(
            f"{meta_path}: SigMF datatype {datatype!r} is not supported; "
            f"readable datatypes: {', '.join(SIGMF_DATATYPES)}"
        )
    return SIGMF_DATATYPES[text]


def _data_path(meta_path: Path, global_info: dict[str, Any]) -> Path:
    """The dataset: ``core:dataset`` (a non-conforming one) if named, else the pair's.

    The same precedence as the SigMF spec and the sigmf package.
    """
    named = global_info.get("core:dataset")
    if named is None:
        conforming = sigmf_paths(meta_path)[1]
        if not conforming.is_file():
            raise SourceError(f"{meta_path}: its dataset {conforming} is missing")
        return conforming
    if not isinstance(named, str) or not named:
        raise SourceError(
            f"{meta_path}: core:dataset must be a file name, got {named!r}"
        )
    if global_info.get("core:metadata_only", False):
        raise SourceError(
            f"{meta_path}: core:dataset is given but core:metadata_only says there "
            "is no dataset"
        )
    found = meta_path.parent / named
    if not found.is_file():
        raise SourceError(
            f"{meta_path}: the dataset {found} named in core:dataset is missing"
        )
    return found


def _captures(meta_path: Path, metadata: dict[str, Any]) -> dict[str, Any]:
    """The first capture object (empty if there is none)."""
    captures = metadata.get("captures", [])
    if not isinstance(captures, list) or not all(isinstance(c, dict) for c in captures):
        raise SourceError(f"{meta_path}: malformed captures (a list of objects)")
    return captures[0] if captures else {}


def _annotations(
    meta_path: Path, metadata: dict[str, Any], offset: int
) -> tuple[Annotation, ...]:
    items = metadata.get("annotations", [])
    if not isinstance(items, list):
        raise SourceError(f"{meta_path}: bad annotations: not a list")
    try:
        return tuple(annotation_from_sigmf(item, offset) for item in items)
    except (ValueError, TypeError, AttributeError) as exc:
        raise SourceError(f"{meta_path}: bad annotation: {exc}") from exc


def read_sigmf_meta(path: str | Path) -> SigmfInfo:
    """Read a SigMF recording's metadata (the samples stay on disk).

    Parameters
    ----------
    path : str or Path
        The ``.sigmf-meta`` file, the ``.sigmf-data`` file, or their common stem.

    Returns
    -------
    SigmfInfo

    Raises
    ------
    SourceError
        If the metadata is missing or not SigMF, the datatype is absent or not one of
        ``SIGMF_DATATYPES`` (the message names it), there is more than one channel,
        the dataset is missing, or a field we read has the wrong type (the message
        names the field).
    """
    meta_path = sigmf_paths(path)[0]
    metadata = _load_meta(meta_path)
    global_info = metadata["global"]
    sample_format = _datatype_format(meta_path, global_info.get("core:datatype"))
    if global_info.get("core:num_channels", 1) != 1:
        raise SourceError(f"{meta_path}: only single-channel SigMF recordings are read")
    first = _captures(meta_path, metadata)
    offset = _count(meta_path, "core:offset", global_info.get("core:offset", 0))
    return SigmfInfo(
        meta_path=meta_path,
        data_path=_data_path(meta_path, global_info),
        sample_format=sample_format,
        sample_rate_hz=_number(
            meta_path, "core:sample_rate", global_info.get("core:sample_rate")
        ),
        center_freq_hz=_number(
            meta_path, "core:frequency", first.get("core:frequency")
        ),
        header_bytes=_count(
            meta_path, "core:header_bytes", first.get("core:header_bytes", 0)
        ),
        trailing_bytes=_count(
            meta_path, "core:trailing_bytes", global_info.get("core:trailing_bytes", 0)
        ),
        annotations=_annotations(meta_path, metadata, offset),
    )


def _number(meta_path: Path, key: str, value: Any) -> float | None:
    """A present number as float; None if absent (a flag must then give it)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SourceError(f"{meta_path}: {key} must be a number, got {value!r}")
    return float(value)


def _count(meta_path: Path, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SourceError(f"{meta_path}: {key} must be an integer >= 0, got {value!r}")
    return value


def build_sigmf_meta(
    *,
    sample_format: str,
    sample_rate_hz: float,
    center_freq_hz: float,
    annotations: list[Annotation],
    sha512_hex: str | None = None,
    description: str = "",
) -> str:
    """The ``.sigmf-meta`` text of a recording, validated against the SigMF schema.

    Parameters
    ----------
    sample_format : str
        ``cu8``, ``cs8``, ``cs16`` or ``cf32``.
    sample_rate_hz : float
        Samples per second.
    center_freq_hz : float
        Centre frequency in Hz.
    annotations : list of Annotation
        Sorted by ``sample_start`` here, as SigMF requires.
    sha512_hex : str, optional
        SHA-512 of the dataset, stored as ``core:sha512``.
    description : str
        ``core:description``; empty = absent.

    Returns
    -------
    str
        JSON text ending in a newline; no clock or host in it, so the same inputs give
        the same bytes.

    Raises
    ------
    SinkError
        If the result does not validate (e.g. an ``extra`` value that is not JSON).
    """
    # Imported here: only writing needs the package (see the module docstring).
    import jsonschema
    import sigmf
    from sigmf.error import SigMFError

    global_info: dict[str, Any] = {
        "core:datatype": _DATATYPE_OF_FORMAT[sample_format],
        "core:sample_rate": float(sample_rate_hz),
        "core:recorder": RECORDER,
        "core:extensions": [dict(WMBUS_EXTENSION)],
    }
    if sha512_hex:
        global_info["core:sha512"] = sha512_hex
    if description:
        global_info["core:description"] = description
    try:
        meta = sigmf.SigMFFile(global_info=global_info)
        meta.add_capture(0, metadata={"core:frequency": float(center_freq_hz)})
        for item in annotations:
            body = annotation_to_sigmf(item)
            del body["core:sample_start"]
            count = body.pop("core:sample_count", None)
            meta.add_annotation(item.sample_start, count, metadata=body)
        meta.validate()
        return meta.dumps() + "\n"
    except (SigMFError, jsonschema.ValidationError, TypeError, ValueError) as exc:
        raise SinkError(f"SigMF metadata does not validate: {exc}") from exc
