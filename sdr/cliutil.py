"""Helpers shared by the ``wmbus`` subcommands (stdlib only: imported at start-up)."""

from __future__ import annotations

__all__ = ["UsageError", "InputError", "parse_hex_argument"]

_HEX_SEPARATORS = " \t:-_"


class UsageError(Exception):
    """Arguments that parse but do not make sense together (exit status 2)."""


class InputError(Exception):
    """One input item (a telegram on the command line or stdin) is unusable."""


def _clean_hex(text: str) -> str:
    text = text.strip()
    if ";" in text:  # an rtl_wmbus line: MODE;CRC;...;ID;0xHEX
        text = text.rsplit(";", 1)[1].strip()
    if text[:2].lower() == "0x":
        text = text[2:]
    return "".join(ch for ch in text if ch not in _HEX_SEPARATORS)


def parse_hex_argument(text: str, label: str) -> bytes:
    """Bytes of a telegram typed as hex (spaces, colons, a 0x prefix allowed).

    Raises
    ------
    InputError
        Empty, odd number of digits, or a character that is not hex; ``label`` says
        which input it was.
    """
    cleaned = _clean_hex(text)
    if not cleaned:
        raise InputError(f"{label}: empty telegram")
    if len(cleaned) % 2:
        raise InputError(f"{label}: odd number of hex digits ({len(cleaned)})")
    try:
        return bytes.fromhex(cleaned)
    except ValueError:
        bad = next(ch for ch in cleaned if ch not in "0123456789abcdefABCDEF")
        raise InputError(f"{label}: not hex (found {bad!r})") from None
