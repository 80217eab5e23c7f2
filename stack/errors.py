"""The exception tree of wmbus-sdr.

Every failure the stack can meet on bad input is one of these; the stack never lets an
``IndexError``, ``struct.error`` or similar escape for malformed bytes.  Exceptions
carry their facts as attributes, and build their message from them.

::

    WmbusError
      DecodeError (also ValueError)     the bytes are malformed
        FrameError                      length / L-field / block layout wrong
        CrcError                        a block CRC does not match
        RecordError                     DIF/VIF records cannot be parsed
        UnsupportedError                valid, but something we cannot decode
      SecurityError                     encryption-related
        KeyMissingError                 encrypted, and no key for this meter
        DecryptionError                 wrong key (0x2F2F or payload-CRC check failed)
        AuthenticationError             the AFL MAC does not match
        NotEncryptedError               header says encrypted, payload is clear
      KeyFormatError (also ValueError)  a key or key file is malformed
      SourceError, SinkError            sdr/: devices, files, sockets
"""

from __future__ import annotations

__all__ = [
    "WmbusError",
    "DecodeError",
    "FrameError",
    "CrcError",
    "RecordError",
    "UnsupportedError",
    "SecurityError",
    "KeyMissingError",
    "DecryptionError",
    "AuthenticationError",
    "NotEncryptedError",
    "SourceError",
    "SinkError",
    "KeyFormatError",
]


class WmbusError(Exception):
    """Base of every error raised by wmbus-sdr for bad input or a failing device."""


class DecodeError(WmbusError, ValueError):
    """Malformed bytes.

    Parameters
    ----------
    message : str
        What is wrong, in words.
    layer : str
        Protocol layer where it was found: ``"frame"``, ``"link"``, ``"ell"``,
        ``"afl"``, ``"tpl"``, ``"apl"``.
    offset : int or None
        Byte offset in the buffer being parsed, where known.
    """

    def __init__(self, message: str, *, layer: str = "", offset: int | None = None):
        self.layer = layer
        self.offset = offset
        where = f"{layer}: " if layer else ""
        at = f" (at byte {offset})" if offset is not None else ""
        super().__init__(f"{where}{message}{at}")


class FrameError(DecodeError):
    """The frame's length or block layout is inconsistent (too short, bad L-field)."""


class CrcError(DecodeError):
    """A CRC check failed.

    Attributes
    ----------
    block : int
        Index of the failing block (0 = first block), or -1 for a non-block CRC
        (ELL payload CRC, compact-frame data CRC).
    expected, actual : int
        CRC computed over the data, CRC found in the frame.
    """

    def __init__(
        self,
        block: int,
        expected: int,
        actual: int,
        *,
        layer: str = "frame",
        offset: int | None = None,
    ):
        self.block = block
        self.expected = expected
        self.actual = actual
        what = f"block {block + 1}" if block >= 0 else "payload"
        super().__init__(
            f"CRC error in {what}: computed {expected:04X}, frame has {actual:04X}",
            layer=layer,
            offset=offset,
        )


class RecordError(DecodeError):
    """The application-layer DIF/VIF records cannot be parsed."""

    def __init__(self, message: str, *, offset: int | None = None):
        super().__init__(message, layer="apl", offset=offset)


class UnsupportedError(DecodeError):
    """Well-formed, but uses something this stack does not implement.

    Attributes
    ----------
    what : str
        The unsupported feature, e.g. ``"security mode 9"``.
    """

    def __init__(self, what: str, *, layer: str = "", offset: int | None = None):
        self.what = what
        super().__init__(f"unsupported: {what}", layer=layer, offset=offset)


class SecurityError(WmbusError):
    """Decryption or authentication could not be done.

    Attributes
    ----------
    meter_id : str
        The meter's id as 8 hex digits, as printed.
    """

    def __init__(self, message: str, meter_id: str = ""):
        self.meter_id = meter_id
        super().__init__(message)


class KeyMissingError(SecurityError):
    """The payload is encrypted and no key is known for this meter."""

    def __init__(self, meter_id: str, what: str = "payload"):
        super().__init__(
            f"{what} is encrypted and no key is given for meter {meter_id}", meter_id
        )


class DecryptionError(SecurityError):
    """Decryption gave no valid plaintext: the key is wrong (or the data corrupt)."""

    def __init__(self, meter_id: str, check: str):
        self.check = check
        super().__init__(f"wrong key for meter {meter_id}: {check}", meter_id)


class AuthenticationError(SecurityError):
    """The AFL message authentication code (AES-CMAC) does not match."""

    def __init__(self, meter_id: str, expected: bytes, actual: bytes):
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"MAC check failed for meter {meter_id} (wrong key or tampered telegram): "
            f"computed {expected.hex()}, telegram has {actual.hex()}",
            meter_id,
        )


class NotEncryptedError(SecurityError):
    """The header announces encryption but the payload is already clear text.

    Such telegrams exist only as replays of already-decrypted data (they are not what a
    meter sends); with a key configured they are refused rather than silently accepted.
    """

    def __init__(self, meter_id: str, mode: int):
        self.mode = mode
        super().__init__(
            f"meter {meter_id}: header says security mode {mode} but the payload is "
            "already clear text (a replayed, pre-decrypted telegram?)",
            meter_id,
        )


class SourceError(WmbusError):
    """A sample source failed: file absent or truncated, device gone, unknown format."""


class SinkError(WmbusError):
    """A sample sink failed: cannot write, device cannot send, duty cycle exceeded."""


class KeyFormatError(WmbusError, ValueError):
    """A key or key file is malformed (bad hex, wrong length, bad line).

    Attributes
    ----------
    line : int or None
        1-based line number in a key file, where the error came from a file.
    """

    def __init__(self, message: str, *, line: int | None = None):
        self.line = line
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{message}")
