"""AES-128 keys of wM-Bus: checking key bytes, parsing typed keys, KeyRing.

Key file layout (text, one entry a line; what ``KeyRing.from_text`` reads)::

    ID        KEYHEX                              [# comment]
    12345678  000102030405060708090a0b0c0d0e0f    # kitchen
    *         00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff

- ID: the meter id as printed, 8 hex digits (most significant first), or ``*`` for
  every meter without a key of its own.
- KEYHEX: 32 hex digits; spaces, tabs and colons between them are ignored.

EN 13757-7 security modes 5 and 7 and ELL encryption (EN 13757-4) all use AES-128, so
a key is always 16 bytes.  The ciphers that use the keys are in ``stack.security``;
reading key files is the job of ``sdr.keys``.  This module needs no ``cryptography``,
so a receiver can load its keys without mapping OpenSSL.  Key bytes never appear in
an exception message or a repr.

References: EN 13757-7 (TPL security); OMS vol. 2 (profiles A/B); FIPS-197 (AES-128).
"""

from __future__ import annotations

import string

from stack.errors import KeyFormatError

__all__ = ["KEY_BYTES", "check_key", "parse_key", "KeyRing"]

KEY_BYTES = 16  # AES-128 key length, the only one EN 13757-7 modes 5/7 and ELL use

_HEX_DIGITS = frozenset(string.hexdigits)
_KEY_SEPARATORS = " \t:"  # allowed between hex digits of a key: "00 11 22", "00:11:22"
_WILDCARD = "*"


def check_key(key: bytes) -> bytes:
    """Check that ``key`` is a 16-byte AES-128 key and return it as ``bytes``.

    Parameters
    ----------
    key : bytes, bytearray or memoryview
        The key bytes.

    Returns
    -------
    bytes
        ``bytes(key)``.

    Raises
    ------
    KeyFormatError
        ``key`` is not bytes-like or not 16 bytes long (the message gives the type or
        length, never the bytes).
    """
    # A key of the wrong type or size is a configuration error, not bad frame data.
    if not isinstance(key, bytes | bytearray | memoryview):
        raise KeyFormatError(f"key must be bytes, got {type(key).__name__}")
    key = bytes(key)
    if len(key) != KEY_BYTES:
        raise KeyFormatError(f"key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def parse_key(text: str) -> bytes:
    """Parse an AES-128 key written as 32 hex digits.

    Spaces, tabs and colons between the digits are ignored (``"00:11:..."``,
    ``"0011 2233 ..."``); case does not matter.

    Parameters
    ----------
    text : str
        The key as typed by the user.

    Returns
    -------
    bytes
        The 16-byte key.

    Raises
    ------
    KeyFormatError
        A character is not a hex digit (its position is given, not the key), or the
        number of digits is not 32.
    """
    if not isinstance(text, str):
        raise KeyFormatError(f"key must be text, got {type(text).__name__}")
    digits = []
    for position, char in enumerate(text.strip(), start=1):
        if char in _KEY_SEPARATORS:
            continue
        if char not in _HEX_DIGITS:
            # Name the position, not the character: it may be a key digit mistyped.
            raise KeyFormatError(
                f"key has a character that is not a hex digit at position {position}"
            )
        digits.append(char)
    if len(digits) != 2 * KEY_BYTES:
        raise KeyFormatError(
            f"key must be {2 * KEY_BYTES} hex digits "
            f"({KEY_BYTES} bytes), got {len(digits)}"
        )
    return bytes.fromhex("".join(digits))


def _normalise_id(meter_id: str) -> str:
    # Meter ids are printed as 8 hex digits (BCD in practice, but "2124589c" exists).
    if not isinstance(meter_id, str):
        raise KeyFormatError(f"meter id must be text, got {type(meter_id).__name__}")
    meter_id = meter_id.strip().lower()
    if meter_id == _WILDCARD:
        return meter_id
    # Say what is wrong, not what was typed: a key put in the id column must not leak.
    if len(meter_id) != 8:
        raise KeyFormatError(
            f"meter id must be 8 hex digits or '*', got {len(meter_id)} characters"
        )
    if not set(meter_id) <= _HEX_DIGITS:
        raise KeyFormatError(
            "meter id must be 8 hex digits or '*', "
            "it has a character that is not a hex digit"
        )
    return meter_id


def _as_key(key: bytes | str) -> bytes:
    return parse_key(key) if isinstance(key, str) else check_key(key)


class KeyRing:
    """Meter id -> AES-128 key, with an optional ``*`` default for every meter.

    An exact id wins over the wildcard.  Ids are 8 hex digits as printed (most
    significant digit first, e.g. ``"12345678"``), case-insensitive, stored lower-case.
    The repr shows ids only, never key bytes.

    Examples
    --------
    >>> ring = KeyRing.from_text("12345678 000102030405060708090a0b0c0d0e0f  # kitchen")
    >>> ring.get("12345678")[:2].hex(), ring.get("87654321")
    ('0001', None)
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[str, bytes] = {}

    @classmethod
    def single(cls, key: bytes | str) -> KeyRing:
        """Return a ring with one key for every meter (what ``--key HEX`` means).

        Raises
        ------
        KeyFormatError
            ``key`` is not 16 bytes or not 32 hex digits.
        """
        ring = cls()
        ring.add(_WILDCARD, key)
        return ring

    @classmethod
    def from_text(cls, text: str) -> KeyRing:
        """Parse a key file: one ``ID KEYHEX`` per line.

        ``ID`` is 8 hex digits or ``*``; ``KEYHEX`` is what `parse_key` accepts.  ``#``
        starts a comment (whole line or trailing); blank lines are ignored.

        Raises
        ------
        KeyFormatError
            With ``line`` set (1-based): a line without a key, a bad id, a bad key, or
            an id given twice.
        """
        if not isinstance(text, str):
            raise KeyFormatError(f"key file must be text, got {type(text).__name__}")
        ring = cls()
        for number, raw_line in enumerate(text.splitlines(), start=1):
            content = raw_line.split("#", 1)[0].strip()
            if not content:
                continue
            try:
                ring._add_line(content)
            except KeyFormatError as exc:
                raise KeyFormatError(str(exc), line=number) from None
        return ring

    def _add_line(self, content: str) -> None:
        fields = content.split(None, 1)
        if len(fields) != 2:
            raise KeyFormatError(
                "expected 'ID KEYHEX' (8 hex digit id or '*', then key)"
            )
        meter_id = _normalise_id(fields[0])
        if meter_id in self._keys:
            raise KeyFormatError(f"meter id {meter_id} is given twice")
        self._keys[meter_id] = parse_key(fields[1])

    def add(self, meter_id: str, key: bytes | str) -> None:
        """Set the key of ``meter_id`` (8 hex digits or ``*``); replaces an old one.

        Raises
        ------
        KeyFormatError
            The id is not 8 hex digits or ``*``, or the key is not a 16-byte key.
        """
        self._keys[_normalise_id(meter_id)] = _as_key(key)

    def get(self, meter_id: str) -> bytes | None:
        """Return the key for ``meter_id``: its own, else the wildcard's, else None."""
        if not isinstance(meter_id, str):
            return None
        return self._keys.get(meter_id.strip().lower(), self._keys.get(_WILDCARD))

    @property
    def ids(self) -> tuple[str, ...]:
        """Ids that have a key (lower-case, ``*`` = wildcard), in insertion order."""
        return tuple(self._keys)

    def __contains__(self, meter_id: object) -> bool:
        # True when get() would find a key, so "id in ring" answers "can I decrypt it?".
        return isinstance(meter_id, str) and self.get(meter_id) is not None

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self._keys)!r})"
