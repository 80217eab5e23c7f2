"""Key files: one ``ID KEYHEX`` per line, ``#`` comments.

An ID of ``*`` gives a default key for every meter.
"""

from __future__ import annotations

from pathlib import Path

from stack.errors import KeyFormatError
from stack.keyring import KeyRing, parse_key

__all__ = ["load_keys", "keyring_from_options"]


def load_keys(path: str | Path) -> KeyRing:
    """Read a key file into a KeyRing.

    Raises
    ------
    KeyFormatError
        If the file cannot be read or a line is malformed (the message names the file
        and the line).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise KeyFormatError(f"key file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFormatError(f"cannot read key file {path}: {exc}") from None
    try:
        return KeyRing.from_text(text)
    except KeyFormatError as exc:
        raise KeyFormatError(f"key file {path}: {exc}", line=exc.line) from None


def keyring_from_options(key: str | None, keys_file: str | None) -> KeyRing | None:
    """The KeyRing that ``--key HEX`` or ``--keys FILE`` asks for (None for neither)."""
    if key is not None:
        return KeyRing.single(parse_key(key))
    if keys_file is not None:
        return load_keys(keys_file)
    return None
