"""One received frame: CRC gate, decoding, mode name, and the outcome it counts as.

``dsp`` hands over ``RawFrame``\\ s (on-air bytes and radio metadata) and ``stack``
returns ``Telegram``\\ s; ``decode_frame`` pairs the two in a ``Reception``, so neither
library imports the other::

    RawFrame.data --stack.frame.strip_crcs--> no-CRC bytes --decode_telegram--> Telegram

Outcomes, counted per frame as rtl_433 does ("ours but broken" against "not for us")::

    frames          every frame the receiver handed over for the chosen modes
    crc_failed      a block CRC or the length did not check: not trusted, not decoded
    telegrams       frames whose CRCs checked (= frames - crc_failed), split into
      decoded         decoded completely (decrypted where encrypted)
      no_key          encrypted, and no key for the meter
      decrypt_failed  a key was given but is wrong (2F2F check, payload CRC, MAC), or
                      the payload is clear text under a header that says encrypted
      not_for_us      good CRCs, but content we do not decode (unsupported CI or
                      security mode, malformed layers above the link header)

Mode names (EN 13757-4 modes as receivers print them)::

    phy "S" (868.3 MHz Manchester)  from a meter -> "S1"   to a meter -> "T2"
    phy "T" (868.95 MHz 3-of-6)     "T1" (direction from the C-field)
    phy "C" (868.95 MHz NRZ)        "C1" (direction from the C-field)
    phy "C2" (869.525 MHz NRZ)      "C2"

S2 and T2 uplinks cannot be told from S1/T1 on air (same channel and coding); they
come out as "S1"/"T1".  The direction ("meter" or "other") is the C-field's
(``stack.telegram.is_from_meter``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Protocol

from stack.errors import (
    CrcError,
    DecodeError,
    FrameError,
    KeyMissingError,
    SecurityError,
    WmbusError,
)
from stack.frame import FRAME_FORMATS, drop_crcs, strip_crcs
from stack.keyring import KeyRing
from stack.telegram import FormatCache, Telegram, decode_telegram, is_from_meter

__all__ = [
    "PHYS",
    "OUTCOMES",
    "RawFrameLike",
    "RxCounters",
    "Reception",
    "decode_frame",
    "link_mode",
    "parse_phys",
]

#: Receiver chains by name, in the order ``--modes`` lists them: S (868.3 MHz, S1/S2
#: and the T2 downlink), T and C (868.95 MHz), C2 (869.525 MHz, C2 downlink).
PHYS: tuple[str, ...] = ("S", "T", "C", "C2")

#: Per-frame outcomes, the names of the ``RxCounters`` fields after ``frames``.
OUTCOMES: tuple[str, ...] = (
    "crc_failed",
    "decoded",
    "no_key",
    "decrypt_failed",
    "not_for_us",
)


class RawFrameLike(Protocol):
    """What the pipeline reads of a ``dsp.receiver.RawFrame``."""

    data: bytes
    phy: str
    frame_format: str
    crc_ok: bool
    sample_index: int
    time_s: float
    channel_hz: float
    freq_offset_hz: float
    rssi_dbfs: float
    snr_db: float
    chip_errors: int


@dataclass
class RxCounters:
    """Frames counted by outcome over a stream (see the module docstring).

    Attributes
    ----------
    frames : int
        Every frame of the chosen modes handed over by the receiver.
    crc_failed, decoded, no_key, decrypt_failed, not_for_us : int
        Frames per outcome; they add up to ``frames``.
    """

    frames: int = 0
    crc_failed: int = 0
    decoded: int = 0
    no_key: int = 0
    decrypt_failed: int = 0
    not_for_us: int = 0

    @property
    def telegrams(self) -> int:
        """Frames whose CRCs checked."""
        return self.frames - self.crc_failed

    def count(self, outcome: str) -> None:
        """Add one frame with this outcome (one of ``OUTCOMES``)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}; known: {OUTCOMES}")
        self.frames += 1
        setattr(self, outcome, getattr(self, outcome) + 1)

    def as_dict(self) -> dict[str, int]:
        """All counters by name, ``telegrams`` included."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["telegrams"] = self.telegrams
        return out

    def summary(self) -> str:
        """One line for people, e.g. ``3 telegrams (2 decoded, 1 no key, ...)``."""
        plural = "" if self.telegrams == 1 else "s"
        return (
            f"{self.telegrams} telegram{plural} ({self.decoded} decoded, "
            f"{self.no_key} no key, {self.decrypt_failed} decrypt failed, "
            f"{self.not_for_us} not for us), {self.crc_failed} CRC failed"
        )


@dataclass(frozen=True, slots=True)
class Reception:
    """One received frame: the receiver's metadata and what the stack made of it.

    Attributes
    ----------
    frame : RawFrame
        As the receiver returned it: on-air bytes (CRCs included) and radio metadata
        (``time_s``, ``sample_index``, ``channel_hz``, ``freq_offset_hz``,
        ``rssi_dbfs``, ``snr_db``, ``chip_errors``, ``phy``, ``frame_format``).
    mode : str
        "S1", "T1", "C1", "T2" or "C2" (see the module docstring).
    direction : str
        "meter" (sent by a meter) or "other" (sent to a meter), from the C-field.
    data : bytes
        The frame without CRCs, L counting the bytes after it.  For a frame whose
        CRCs failed: the same positions with the CRCs dropped unchecked.
    crc_ok : bool
        The stack checked every block CRC and the length.
    telegram : Telegram or None
        The decoded telegram; None when the CRCs failed or no link header stands.
    error : WmbusError or None
        Why the frame is not fully decoded: the CRC or frame error, or
        ``telegram.error``.
    outcome : str
        One of ``OUTCOMES``.
    """

    frame: Any
    mode: str
    direction: str
    data: bytes
    crc_ok: bool
    telegram: Telegram | None
    error: WmbusError | None
    outcome: str


def parse_phys(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """Receiver chains named by ``--modes`` (``"S,T,C"``; ``C2`` for the downlink).

    Parameters
    ----------
    text : str or sequence of str or None
        Comma-separated names, case-insensitive; None or empty means all of ``PHYS``.

    Returns
    -------
    tuple of str
        Distinct names of ``PHYS``, in the order of ``PHYS``.

    Raises
    ------
    ValueError
        For a name that is not one of ``PHYS`` (the message lists them).
    """
    if text is None:
        return PHYS
    items = text.split(",") if isinstance(text, str) else list(text)
    names = {item.strip().upper() for item in items if item.strip()}
    unknown = sorted(names - set(PHYS))
    if unknown:
        raise ValueError(
            f"unknown mode {', '.join(unknown)}: use S, T, C and C2 (downlink at "
            "869.525 MHz), separated by commas"
        )
    return tuple(p for p in PHYS if p in names) if names else PHYS


def link_mode(phy: str, c_field: int) -> tuple[str, str]:
    """Mode name and direction of a frame from its receiver chain and C-field.

    Parameters
    ----------
    phy : {"S", "T", "C", "C2"}
        The receiver chain that heard the frame.
    c_field : int
        The link-layer C-field (frame byte 1).

    Returns
    -------
    tuple of (str, str)
        ``(mode, direction)``: e.g. ``("S1", "meter")``, ``("T2", "other")``.

    Raises
    ------
    ValueError
        If ``phy`` is not one of ``PHYS``.
    """
    from_meter = is_from_meter(c_field)
    direction = "meter" if from_meter else "other"
    if phy == "S":
        return ("S1" if from_meter else "T2"), direction
    if phy == "T":
        return "T1", direction
    if phy == "C":
        return "C1", direction
    if phy == "C2":
        return "C2", direction
    raise ValueError(f"unknown receiver chain {phy!r}; known: {', '.join(PHYS)}")


def _classify(telegram: Telegram) -> str:
    error = telegram.error
    if error is None:
        return "decoded"
    if isinstance(error, KeyMissingError):
        return "no_key"
    if isinstance(error, SecurityError):
        return "decrypt_failed"
    return "not_for_us"


def decode_frame(
    frame: RawFrameLike,
    keys: KeyRing | None = None,
    formats: FormatCache | None = None,
) -> Reception:
    """Check, strip and decode one received frame.

    Parameters
    ----------
    frame : RawFrame
        From the receiver: on-air bytes from L to the last CRC, and metadata.
    keys : KeyRing or None
        AES keys by meter id.
    formats : FormatCache or None
        Record layouts of earlier full frames of the stream (for compact frames);
        updated by every full frame decoded.

    Returns
    -------
    Reception
        Never raises for bad bytes: a CRC or length failure gives outcome
        ``"crc_failed"`` with the error kept in ``error``.

    Raises
    ------
    ValueError
        If ``frame.phy`` or ``frame.frame_format`` is not a known name (a receiver
        bug, not bad input).
    """
    raw = bytes(frame.data)
    if frame.frame_format not in FRAME_FORMATS:
        raise ValueError(f"frame format must be 'A' or 'B', not {frame.frame_format!r}")
    mode, direction = link_mode(frame.phy, raw[1] if len(raw) > 1 else 0)
    try:
        data = strip_crcs(raw, frame.frame_format)
    except (CrcError, FrameError) as exc:
        return Reception(
            frame,
            mode,
            direction,
            drop_crcs(raw, frame.frame_format),
            False,
            None,
            exc,
            "crc_failed",
        )
    try:
        telegram = decode_telegram(data, keys, formats=formats)
    except DecodeError as exc:  # no complete link header: nothing of ours to show
        return Reception(frame, mode, direction, data, True, None, exc, "not_for_us")
    return Reception(
        frame,
        mode,
        direction,
        data,
        True,
        telegram,
        telegram.error,
        _classify(telegram),
    )
