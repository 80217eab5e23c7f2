"""Annotations of a recording: where each telegram is, and what it holds (ground truth).

``Annotation`` is one SigMF annotation object as a typed record.  Core SigMF keys and
our ``wmbus:`` keys (declared as the ``wmbus`` extension, see ``sdr.sigmf_meta``) map
to named fields; any other key round-trips untouched through ``extra``::

    core:sample_start     sample_start        first sample (file-relative)
    core:sample_count     sample_count        number of samples
    core:label            label               "wM-Bus T1 A" (<= 20 characters)
    core:comment          comment
    core:generator        generator           "wmbus-sdr" for ours
    core:freq_lower_edge  freq_lower_edge_hz  carrier - bandwidth/2, Hz (RF)
    core:freq_upper_edge  freq_upper_edge_hz  carrier + bandwidth/2, Hz (RF)
    wmbus:mode            mode                "S1", "T1", "C1", "T2", "C2", ...
    wmbus:frame_format    frame_format        "A" or "B"
    wmbus:carrier_hz      carrier_hz          carrier frequency, Hz (RF)
    wmbus:telegram        telegram_hex        link layer without CRCs, L counting the
                                              bytes after it (the form receivers print)
    wmbus:frame           frame_hex           the frame as sent, with CRCs (optional)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["RECORDER", "Annotation", "annotation_to_sigmf", "annotation_from_sigmf"]

#: Our name in ``core:recorder`` and ``core:generator``.
RECORDER = "wmbus-sdr"
# Annotation keys held in named fields; everything else round-trips through ``extra``.
_FIELD_KEYS = {
    "core:sample_start": "sample_start",
    "core:sample_count": "sample_count",
    "core:label": "label",
    "core:comment": "comment",
    "core:generator": "generator",
    "core:freq_lower_edge": "freq_lower_edge_hz",
    "core:freq_upper_edge": "freq_upper_edge_hz",
    "wmbus:mode": "mode",
    "wmbus:frame_format": "frame_format",
    "wmbus:carrier_hz": "carrier_hz",
    "wmbus:telegram": "telegram_hex",
    "wmbus:frame": "frame_hex",
}


@dataclass(frozen=True, slots=True)
class Annotation:
    """One SigMF annotation; for a telegram, the ground truth of what was sent.

    Attributes
    ----------
    sample_start : int
        Index of the first sample (file-relative, >= 0).
    sample_count : int or None
        Number of samples covered; ``None`` means "to the end of the capture".
    label, comment, generator : str
        ``core:label`` (short, <= 20 characters recommended), ``core:comment``,
        ``core:generator``; empty = absent.
    freq_lower_edge_hz, freq_upper_edge_hz : float or None
        Occupied band in Hz (RF); both or neither.
    mode, frame_format : str
        wM-Bus mode ("T1", "C1", ...) and frame format ("A"/"B"); empty = absent.
    carrier_hz : float or None
        Carrier frequency of the telegram in Hz (RF).
    telegram_hex, frame_hex : str
        Telegram without CRCs, and the frame with CRCs as sent, in hex; empty = absent.
    extra : dict
        Any other keys, verbatim (JSON values, namespaced keys like ``"wmbus:snr_db"``).
    """

    sample_start: int
    sample_count: int | None = None
    label: str = ""
    comment: str = ""
    generator: str = ""
    freq_lower_edge_hz: float | None = None
    freq_upper_edge_hz: float | None = None
    mode: str = ""
    frame_format: str = ""
    carrier_hz: float | None = None
    telegram_hex: str = ""
    frame_hex: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.sample_start, int) or self.sample_start < 0:
            raise ValueError(
                f"sample_start must be an int >= 0, got {self.sample_start!r}"
            )
        if self.sample_count is not None and (
            not isinstance(self.sample_count, int) or self.sample_count < 0
        ):
            raise ValueError(
                f"sample_count must be an int >= 0, got {self.sample_count!r}"
            )
        if (self.freq_lower_edge_hz is None) != (self.freq_upper_edge_hz is None):
            raise ValueError(
                "give both freq_lower_edge_hz and freq_upper_edge_hz, or neither"
            )
        for name in ("telegram_hex", "frame_hex"):
            try:
                bytes.fromhex(getattr(self, name))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{name} is not hex: {getattr(self, name)!r}") from exc
        clash = set(self.extra) & set(_FIELD_KEYS)
        if clash:
            raise ValueError(f"extra repeats named fields: {', '.join(sorted(clash))}")

    @property
    def last_sample(self) -> int | None:
        """Index of the last sample covered, or ``None`` if open-ended."""
        if self.sample_count is None:
            return None
        return self.sample_start + self.sample_count - 1

    @classmethod
    def for_telegram(
        cls,
        first_sample: int,
        last_sample: int,
        *,
        mode: str,
        frame_format: str,
        carrier_hz: float,
        telegram_hex: str,
        bandwidth_hz: float | None = None,
        frame_hex: str = "",
        comment: str = "",
        extra: dict[str, Any] | None = None,
    ) -> Annotation:
        """Annotation for one transmitted telegram.

        Parameters
        ----------
        first_sample, last_sample : int
            First and last sample index (inclusive) of the telegram on air.
        mode, frame_format : str
            E.g. ``"T1"``, ``"A"``.
        carrier_hz : float
            Carrier frequency in Hz (RF).
        telegram_hex : str
            Telegram without CRCs, hex.
        bandwidth_hz : float, optional
            Occupied bandwidth in Hz; sets the SigMF frequency edges.
        frame_hex, comment : str
            Frame with CRCs (hex) and a free comment, optional.
        extra : dict, optional
            Further keys, e.g. ``{"wmbus:ebn0_db": 12.0}``.

        Returns
        -------
        Annotation

        Raises
        ------
        ValueError
            If ``last_sample < first_sample`` or a field is invalid.
        """
        if last_sample < first_sample:
            raise ValueError(
                f"last_sample {last_sample} is before first_sample {first_sample}"
            )
        edges: tuple[float | None, float | None] = (None, None)
        if bandwidth_hz is not None:
            edges = (carrier_hz - bandwidth_hz / 2, carrier_hz + bandwidth_hz / 2)
        return cls(
            sample_start=first_sample,
            sample_count=last_sample - first_sample + 1,
            label=f"wM-Bus {mode} {frame_format}".strip(),
            comment=comment,
            generator=RECORDER,
            freq_lower_edge_hz=edges[0],
            freq_upper_edge_hz=edges[1],
            mode=mode,
            frame_format=frame_format,
            carrier_hz=carrier_hz,
            telegram_hex=telegram_hex.lower(),
            frame_hex=frame_hex.lower(),
            extra=dict(extra or {}),
        )


def annotation_to_sigmf(annotation: Annotation) -> dict[str, Any]:
    """SigMF annotation object for ``annotation`` (absent fields left out)."""
    out: dict[str, Any] = {}
    for key, attr in _FIELD_KEYS.items():
        value = getattr(annotation, attr)
        if value is not None and value != "":
            out[key] = value
    out.update(annotation.extra)
    return out


def annotation_from_sigmf(item: dict[str, Any], offset: int = 0) -> Annotation:
    """Parse one SigMF annotation object.

    Parameters
    ----------
    item : dict
        The annotation as found in the metadata.
    offset : int
        The recording's ``core:offset``, subtracted so indices become file-relative.

    Raises
    ------
    ValueError
        If a field we interpret has the wrong type or value.
    """
    kwargs: dict[str, Any] = {"extra": {}}
    for key, value in item.items():
        if key in _FIELD_KEYS:
            kwargs[_FIELD_KEYS[key]] = value
        else:
            kwargs["extra"][key] = value
    if "sample_start" not in kwargs:
        raise ValueError("annotation without core:sample_start")
    if isinstance(kwargs["sample_start"], int):
        kwargs["sample_start"] -= offset
    for name in ("freq_lower_edge_hz", "freq_upper_edge_hz", "carrier_hz"):
        if name in kwargs and not isinstance(kwargs[name], (int, float)):
            raise ValueError(f"{name} must be a number, got {kwargs[name]!r}")
    for name in ("label", "comment", "generator", "mode", "frame_format"):
        if name in kwargs and not isinstance(kwargs[name], str):
            raise ValueError(f"{name} must be text, got {kwargs[name]!r}")
    return Annotation(**kwargs)
