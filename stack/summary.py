"""A decoded telegram as plain data: the JSON object of ``wmbus decode --json``.

Keys (always present; null where the layer is absent)::

    manufacturer, id, version, device_type, device_type_name, c_field, c_field_name,
    ci, access_number, status, status_flags, security_mode, encrypted, decrypted,
    predecrypted, error, error_type, warnings, tpl_address, ell, afl,
    compact_signature, payload, telegram, crc_format, records

Numbers are JSON integers (``c_field`` 68 is 0x44); ``payload`` and ``telegram`` are
lower-case hex, the telegram in no-CRC form (L counts the bytes after it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .link import decode_manufacturer, device_type_name
from .transport import status_flags

if TYPE_CHECKING:  # only for annotations: summary must not import telegram at run time
    from .telegram import Telegram

__all__ = ["telegram_to_dict"]


def _tpl_address(telegram: Telegram) -> dict[str, Any] | None:
    tpl = telegram.tpl
    if tpl is None or tpl.address is None:
        return None
    m_code, meter_id, version, device_type = tpl.address
    return {
        "manufacturer": decode_manufacturer(m_code),
        "id": meter_id,
        "version": version,
        "device_type": device_type,
        "device_type_name": device_type_name(device_type),
    }


def _ell(telegram: Telegram) -> dict[str, Any] | None:
    ell = telegram.ell
    if ell is None:
        return None
    return {
        "ci": ell.ci,
        "cc": ell.cc,
        "access_number": ell.access_number,
        "session": ell.session.hex() if ell.session else None,
        "encryption": ell.encryption,
        "address": ell.address.hex() if ell.address else None,
    }


def _afl(telegram: Telegram) -> dict[str, Any] | None:
    afl = telegram.afl
    if afl is None:
        return None
    return {
        "fc": afl.fc,
        "mcl": afl.mcl,
        "message_counter": (
            int.from_bytes(afl.message_counter, "little")
            if afl.message_counter
            else None
        ),
        "mac": afl.mac.hex() if afl.mac else None,
    }


def telegram_to_dict(telegram: Telegram) -> dict[str, Any]:
    """Return the JSON-ready dict of a decoded telegram (see the module docstring)."""
    link = telegram.link
    status = telegram.status
    return {
        "manufacturer": link.manufacturer,
        "id": link.id,
        "version": link.version,
        "device_type": link.device_type,
        "device_type_name": link.device_type_name,
        "c_field": link.c_field,
        "c_field_name": link.c_field_name,
        "ci": telegram.ci,
        "access_number": telegram.access_number,
        "status": status,
        "status_flags": status_flags(status) if status is not None else [],
        "security_mode": telegram.security_mode,
        "encrypted": telegram.encrypted,
        "decrypted": telegram.decrypted,
        "predecrypted": telegram.predecrypted,
        "error": str(telegram.error) if telegram.error else None,
        "error_type": type(telegram.error).__name__ if telegram.error else None,
        "warnings": list(telegram.warnings),
        "tpl_address": _tpl_address(telegram),
        "ell": _ell(telegram),
        "afl": _afl(telegram),
        "compact_signature": telegram.compact_signature,
        "payload": telegram.payload.hex(),
        "telegram": telegram.frame.hex(),
        "crc_format": telegram.crc_format,
        "records": [record.to_dict() for record in telegram.records],
    }
