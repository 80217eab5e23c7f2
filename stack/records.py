"""Application layer: EN 13757-3 data records (DIF, DIFE, VIF, VIFE, data).

(Helper fills in: wire format in this docstring, parse_records, build_record(s), compact frames.)
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Record"]


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded data record.

    Attributes
    ----------
    quantity : str
        What is measured, snake_case: ``"volume"``, ``"energy"``, ``"flow_temperature"``,
        ``"date_time"``, ``"error_flags"``, ``"manufacturer_data"`` ...
    value : int, float, str, bytes or None
        The value after the VIF exponent is applied; dates and times as ISO 8601 strings;
        text as str; binary or manufacturer data as bytes; None for no data.
    unit : str
        Unit of ``value``: ``"m3"``, ``"Wh"``, ``"°C"``, ``"m3/h"`` ...; ``""`` if none.
    storage, tariff, subunit : int
        From the DIF/DIFE chain; storage 0 is the current value.
    function : str
        ``"instantaneous"``, ``"maximum"``, ``"minimum"`` or ``"error"`` (value during error).
    modifiers : tuple of str
        Meanings of combinable VIFEs, e.g. ``("backward flow",)``.
    dif_vif : bytes
        The record header as sent (DIF, DIFEs, VIF, VIFEs); compact frames hash these.
    data : bytes
        The data field as sent.
    """

    quantity: str
    value: int | float | str | bytes | None
    unit: str = ""
    storage: int = 0
    tariff: int = 0
    subunit: int = 0
    function: str = "instantaneous"
    modifiers: tuple[str, ...] = ()
    dif_vif: bytes = b""
    data: bytes = b""
