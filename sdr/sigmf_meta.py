"""SigMF metadata of wM-Bus recordings: datatypes, telegram annotations, read and build.

A SigMF recording is a pair ``NAME.sigmf-data`` (raw samples) + ``NAME.sigmf-meta``
(JSON).  We read and write the parts that matter here, through the ``sigmf`` package
(which owns file naming and schema validation)::

    global       core:datatype     cu8 | ci8 | ci16_le | cf32_le
                                   (our cu8 | cs8 | cs16 | cf32)
                 core:sample_rate  samples per second
                 core:extensions   [{"name": "wmbus", "version": "1.0.0",
                                     "optional": true}]
    captures[0]  core:frequency    centre frequency, Hz
    annotations  one per telegram (keys in ``sdr.annotation``), sorted by start

Samples are scaled by ``dsp.convert`` (cu8 offset 127.5), not by the sigmf package's
own reader (offset 128), so a cu8 SigMF file reads exactly like the same bytes as .cu8.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import sigmf
from sigmf import sigmffile
from sigmf.error import SigMFError

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
    common stem.
    """
    names = sigmffile.get_sigmf_filenames(path)
    return names["meta_fn"], names["data_fn"]


def _load_meta(meta_path: Path) -> tuple[sigmf.SigMFFile, dict[str, Any]]:
    if not meta_path.is_file():
        raise SourceError(f"{meta_path}: no such SigMF metadata file")
    try:
        with meta_path.open("rb") as fh:
            metadata = json.load(fh)
        if not isinstance(metadata, dict) or not isinstance(
            metadata.get("global"), dict
        ):
            raise ValueError("no 'global' object")
        return sigmf.SigMFFile(metadata=metadata), metadata
    except (OSError, ValueError, SigMFError) as exc:
        raise SourceError(f"{meta_path}: not readable SigMF metadata: {exc}") from exc


def _datatype_format(meta_path: Path, datatype: Any) -> str:
    text = str(datatype).lower()
    if text in ("cu8_le", "cu8_be", "ci8_le", "ci8_be"):
        text = text[:-3]  # byte order means nothing for 8-bit components
    elif text in ("ci16", "cf32"):
        text += (
            "_le"  # no byte order given: sigmf reads native, i.e. little-endian here
        )
    if text not in SIGMF_DATATYPES:
        raise SourceError(
            f"{meta_path}: SigMF datatype {datatype!r} is not supported; "
            f"readable datatypes: {', '.join(SIGMF_DATATYPES)}"
        )
    return SIGMF_DATATYPES[text]


def _data_path(meta_path: Path, metadata: dict[str, Any]) -> Path:
    try:
        found = sigmffile.get_dataset_filename_from_metadata(meta_path, metadata)
    except SigMFError as exc:
        raise SourceError(f"{meta_path}: {exc}") from exc
    if found is None:
        raise SourceError(
            f"{meta_path}: its dataset {sigmf_paths(meta_path)[1]} is missing"
        )
    return Path(found)


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
        If the metadata is missing or not SigMF, the datatype is not one of
        ``SIGMF_DATATYPES`` (the message names it), there is more than one channel,
        the dataset is missing, or an annotation is malformed.
    """
    meta_path = sigmf_paths(path)[0]
    meta, metadata = _load_meta(meta_path)
    sample_format = _datatype_format(meta_path, meta.get_global_field("core:datatype"))
    if meta.get_global_field("core:num_channels", 1) != 1:
        raise SourceError(f"{meta_path}: only single-channel SigMF recordings are read")
    captures = meta.get_captures()
    first = captures[0] if isinstance(captures, list) and captures else {}
    if not isinstance(first, dict):
        raise SourceError(f"{meta_path}: malformed captures")
    offset = meta.get_global_field("core:offset", 0)
    try:
        annotations = tuple(
            annotation_from_sigmf(item, offset) for item in meta.get_annotations()
        )
    except (ValueError, TypeError, AttributeError) as exc:
        raise SourceError(f"{meta_path}: bad annotation: {exc}") from exc
    return SigmfInfo(
        meta_path=meta_path,
        data_path=_data_path(meta_path, metadata),
        sample_format=sample_format,
        sample_rate_hz=_number(meta.get_global_field("core:sample_rate")),
        center_freq_hz=_number(first.get("core:frequency")),
        header_bytes=_count(meta_path, first.get("core:header_bytes", 0)),
        trailing_bytes=_count(
            meta_path, meta.get_global_field("core:trailing_bytes", 0)
        ),
        annotations=annotations,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def _count(meta_path: Path, value: Any) -> int:
    if not isinstance(value, int) or value < 0:
        raise SourceError(
            f"{meta_path}: byte count must be an integer >= 0, got {value!r}"
        )
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
