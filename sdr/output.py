"""Formatting decoded telegrams for people (text) and programs (JSON lines)."""

from __future__ import annotations

import json
from typing import Any

from stack.records import describe_record
from stack.telegram import Telegram

__all__ = ["format_text", "format_json"]


def _security_text(info: dict[str, Any]) -> str:
    if info["predecrypted"]:
        return "clear text (header says encrypted)"
    if not info["encrypted"]:
        return "not encrypted"
    parts = []
    if info["ell"] and info["ell"]["encryption"]:
        parts.append("ELL AES-CTR")
    if info["security_mode"]:
        parts.append(f"mode {info['security_mode']}")
    state = "decrypted" if info["decrypted"] else "NOT decrypted"
    return f"{' + '.join(parts) or 'encrypted'}, {state}"


def format_text(telegram: Telegram) -> str:
    """A readable block: a header line, then one indented line per record."""
    info = telegram.to_dict()
    head = (
        f"{info['manufacturer']} {info['id']} ({info['device_type_name']}, "
        f"version 0x{info['version']:02x}) {info['c_field_name']}"
    )
    if info["ci"] is not None:
        head += f" CI 0x{info['ci']:02x}"
    if info["access_number"] is not None:
        head += f" #{info['access_number']}"
    head += f", {_security_text(info)}"
    lines = [head]
    if info["tpl_address"]:
        addr = info["tpl_address"]
        lines.append(
            f"  meter {addr['manufacturer']} {addr['id']} "
            f"({addr['device_type_name']}) behind this sender"
        )
    if info["status_flags"]:
        lines.append(f"  status: {', '.join(info['status_flags'])}")
    # Labels come from the Records, not the JSON dict: the dict cannot tell an invalid
    # value from a record without data, and the library labels Records the same way.
    lines += [f"  {describe_record(r)}" for r in telegram.records]
    lines += [f"  note: {w}" for w in info["warnings"]]
    if info["error"]:
        lines.append(f"  error: {info['error']}")
    return "\n".join(lines)


def format_json(telegram: Telegram, **extra: Any) -> str:
    """One JSON object on one line; ``extra`` keys come first (e.g. radio metadata)."""
    info = dict(extra)
    info.update(telegram.to_dict())
    return json.dumps(info, ensure_ascii=False, default=_json_default)


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    raise TypeError(f"cannot put {type(value).__name__} into JSON")
