"""AES-128 security of wM-Bus: TPL modes 5 and 7, ELL counter mode, AES-CMAC.

Byte layouts (all fields "as sent", i.e. in frame byte order)::

    mode 5 IV (16)       M(2) | ID(4) Ver(1) Type(1) | ACC x 8
    mode 7 KDF in (16)   DC(1) | MCR(4) | ID(4) | 07 07 07 07 07 07 07
    ELL counter (16)     M(2) | ID(4) Ver(1) Type(1) | CC&~(H|R) | SN(4) | FN(2) | BC(1)

- Mode 5 (OMS profile A): AES-128-CBC with the IV above; the encrypted region is the
  N 16-byte blocks after the TPL CFG field (N = CFG bits 7-4).  M and A come from the
  long TPL header when there is one, else from the DLL.
- Mode 7 (OMS profile B): AES-128-CBC with a zero IV under an ephemeral key Kenc, which
  is AES-CMAC(master key, KDF input) with DC = 0x00; the MAC key Kmac uses DC = 0x01.
- ELL (CI 0x8D / 0x8F with SN encryption bits = 1): AES-128-CTR; the whole counter block
  is incremented as one big-endian 128-bit integer per 16-byte block.

Keys (``KeyRing``, ``parse_key``, ``KEY_BYTES``) live in ``stack.keyring`` and are
re-exported here, so ``from stack.security import KeyRing`` keeps working.  Key bytes
never appear in an exception message or a repr.

References: EN 13757-4 (ELL), EN 13757-7 (TPL security, AFL), OMS vol. 2 (profiles A/B);
wmbus-reference.md sections 3.2, 3.3, 3.5, 3.6; NIST SP 800-38A (CBC, CTR), SP 800-38B
(CMAC).
"""

from __future__ import annotations

from stack.errors import FrameError
from stack.keyring import KEY_BYTES, KeyRing, check_key, parse_key

# cryptography is imported inside the three functions that call it (_cbc, aes_cmac,
# ctr_crypt): it maps ~6 MB of OpenSSL, which a receiver without keys never uses.

__all__ = [
    "AES_BLOCK_BYTES",
    "KEY_BYTES",
    "DC_KENC_METER",
    "DC_KMAC_METER",
    "DC_KENC_OTHER",
    "DC_KMAC_OTHER",
    "ELL_CC_HOP",
    "ELL_CC_REPEATED",
    "mode5_iv",
    "encrypt_cbc",
    "decrypt_cbc",
    "aes_cmac",
    "derive_key",
    "ell_counter_block",
    "ctr_crypt",
    "parse_key",
    "KeyRing",
]

AES_BLOCK_BYTES = 16  # FIPS-197: AES block size

# Derivation constants (DC) of the mode 7 KDF, EN 13757-7 / OMS vol. 2 (reference 3.6).
DC_KENC_METER = 0x00  # encryption key, meter -> other direction
DC_KMAC_METER = 0x01  # MAC key, meter -> other direction
DC_KENC_OTHER = 0x10  # encryption key, other -> meter direction
DC_KMAC_OTHER = 0x11  # MAC key, other -> meter direction

# ELL CC bits that change on the way through a repeater, hence left out of the counter
# block (EN 13757-4; reference 3.2).
ELL_CC_HOP = 0x10  # H: hop count
ELL_CC_REPEATED = 0x02  # R: repeated access

_KDF_PADDING = bytes([0x07] * 7)  # EN 13757-7 KDF: pads DC|MCR|ID to one AES block


# --- argument checks ----------------------------------------------------------------


def _check_field(value: bytes, n_bytes: int, name: str, layer: str) -> bytes:
    # Header fields are sliced from a frame by the caller: wrong size = short frame.
    if not isinstance(value, bytes | bytearray | memoryview):
        raise FrameError(
            f"{name} must be bytes, got {type(value).__name__}", layer=layer
        )
    value = bytes(value)
    if len(value) != n_bytes:
        raise FrameError(
            f"{name} must be {n_bytes} bytes, got {len(value)}", layer=layer
        )
    return value


def _check_int(value: int, n_bytes: int, name: str, layer: str) -> int:
    limit = 1 << (8 * n_bytes)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < limit:
        raise FrameError(
            f"{name} must be an integer in 0..{limit - 1}, got {value!r}", layer=layer
        )
    return value


def _check_blocks(data: bytes) -> bytes:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise FrameError(f"data must be bytes, got {type(data).__name__}", layer="tpl")
    data = bytes(data)
    if len(data) % AES_BLOCK_BYTES:
        raise FrameError(
            f"encrypted length {len(data)} bytes is not a multiple of "
            f"{AES_BLOCK_BYTES}",
            layer="tpl",
        )
    return data


# --- TPL mode 5 and mode 7 ----------------------------------------------------------


def mode5_iv(manufacturer: bytes, address: bytes, access_number: int) -> bytes:
    """Build the 16-byte IV of security mode 5 (AES-CBC with IV, OMS profile A).

    Parameters
    ----------
    manufacturer : bytes
        M field, 2 bytes as sent (little-endian code).
    address : bytes
        A field, 6 bytes as sent: ID(4, LSB first), version, device type.  Taken from
        the long TPL header when present, else from the DLL.
    access_number : int
        ACC byte of the TPL header, 0..255.

    Returns
    -------
    bytes
        ``manufacturer + address + bytes([access_number]) * 8``.

    Raises
    ------
    FrameError
        (layer ``"tpl"``) a field has the wrong size or ACC is out of range.
    """
    manufacturer = _check_field(manufacturer, 2, "manufacturer", "tpl")
    address = _check_field(address, 6, "address", "tpl")
    access_number = _check_int(access_number, 1, "access number", "tpl")
    return manufacturer + address + bytes([access_number]) * 8


def _cbc(key: bytes, iv: bytes, data: bytes, *, encrypt: bool) -> bytes:
    key = check_key(key)
    iv = _check_field(iv, AES_BLOCK_BYTES, "IV", "tpl")
    data = _check_blocks(data)
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    worker = cipher.encryptor() if encrypt else cipher.decryptor()
    return worker.update(data) + worker.finalize()


def decrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Decrypt with AES-128-CBC, no padding (TPL security modes 5 and 7).

    Parameters
    ----------
    key : bytes
        16-byte AES key (the meter key for mode 5, Kenc for mode 7).
    iv : bytes
        16-byte IV (`mode5_iv` for mode 5, 16 zero bytes for mode 7).
    data : bytes
        Cipher text, a multiple of 16 bytes long (may be empty).

    Returns
    -------
    bytes
        Plain text, same length as ``data``.  A right key gives a leading ``2F 2F``;
        this function does not check it.

    Raises
    ------
    KeyFormatError
        ``key`` is not 16 bytes.
    FrameError
        (layer ``"tpl"``) ``iv`` is not 16 bytes or ``data`` is not whole blocks.
    """
    return _cbc(key, iv, data, encrypt=False)


def encrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Encrypt with AES-128-CBC, no padding; the inverse of `decrypt_cbc`.

    Parameters and exceptions are those of `decrypt_cbc`, with ``data`` the plain text.

    Returns
    -------
    bytes
        Cipher text, same length as ``data``.
    """
    return _cbc(key, iv, data, encrypt=True)


def aes_cmac(key: bytes, data: bytes) -> bytes:
    """Compute the AES-128-CMAC (NIST SP 800-38B, RFC 4493) of ``data``.

    Parameters
    ----------
    key : bytes
        16-byte AES key.
    data : bytes
        Message of any length (may be empty).

    Returns
    -------
    bytes
        The full 16-byte tag; wM-Bus truncates it to the AFL MAC length (first bytes).

    Raises
    ------
    KeyFormatError
        ``key`` is not 16 bytes.
    """
    key = check_key(key)
    from cryptography.hazmat.primitives import cmac
    from cryptography.hazmat.primitives.ciphers import algorithms

    mac = cmac.CMAC(algorithms.AES(key))
    mac.update(bytes(data))
    return mac.finalize()


def derive_key(
    master_key: bytes, dc: int, message_counter: bytes, meter_id: bytes
) -> bytes:
    """Derive a mode 7 ephemeral key (EN 13757-7 KDF, OMS profile B).

    Parameters
    ----------
    master_key : bytes
        16-byte meter master key.
    dc : int
        Derivation constant: `DC_KENC_METER`, `DC_KMAC_METER`, `DC_KENC_OTHER` or
        `DC_KMAC_OTHER`.
    message_counter : bytes
        AFL MCR, 4 bytes as sent (LSB first).
    meter_id : bytes
        Meter ID, 4 bytes as sent (LSB first): from the long TPL header if present, else
        from the DLL A field.

    Returns
    -------
    bytes
        16-byte key: AES-CMAC(master_key, DC | MCR | ID | 07 x 7).

    Raises
    ------
    KeyFormatError
        ``master_key`` is not 16 bytes.
    FrameError
        (layer ``"afl"``) ``dc`` is not a byte, or MCR or ID has the wrong size.
    """
    dc = _check_int(dc, 1, "derivation constant", "afl")
    message_counter = _check_field(message_counter, 4, "message counter", "afl")
    meter_id = _check_field(meter_id, 4, "meter id", "afl")
    return aes_cmac(master_key, bytes([dc]) + message_counter + meter_id + _KDF_PADDING)


# --- ELL counter mode ---------------------------------------------------------------


def ell_counter_block(
    manufacturer: bytes,
    address: bytes,
    cc: int,
    session: bytes,
    fn: int = 0,
    bc: int = 0,
) -> bytes:
    """Build the initial AES-CTR counter block of ELL encryption.

    Parameters
    ----------
    manufacturer : bytes
        DLL M field, 2 bytes as sent.
    address : bytes
        DLL A field, 6 bytes as sent: ID(4), version, device type.
    cc : int
        ELL communication control byte; its H (0x10) and R (0x02) bits are cleared here,
        since a repeater may change them.
    session : bytes
        ELL SN field, 4 bytes as sent.
    fn : int
        Frame number, 0..65535, written LSB first (always 0 in single-frame telegrams;
        the byte order is not confirmed by a vector).
    bc : int
        Block counter, 0..255 (0 at the start of a telegram).

    Returns
    -------
    bytes
        16-byte counter block ``M | A | CC' | SN | FN | BC``.

    Raises
    ------
    FrameError
        (layer ``"ell"``) a field has the wrong size or a number is out of range.
    """
    manufacturer = _check_field(manufacturer, 2, "manufacturer", "ell")
    address = _check_field(address, 6, "address", "ell")
    cc = _check_int(cc, 1, "CC", "ell")
    session = _check_field(session, 4, "session number", "ell")
    fn = _check_int(fn, 2, "frame number", "ell")
    bc = _check_int(bc, 1, "block counter", "ell")
    cc_fixed = cc & ~(ELL_CC_HOP | ELL_CC_REPEATED)
    return (
        manufacturer
        + address
        + bytes([cc_fixed])
        + session
        + fn.to_bytes(2, "little")
        + bytes([bc])
    )


def ctr_crypt(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    """Encrypt or decrypt with AES-128-CTR (ELL); the same call does both.

    Parameters
    ----------
    key : bytes
        16-byte AES key.
    counter_block : bytes
        16-byte initial counter (`ell_counter_block`).  Block i of the key stream is
        AES(key, counter_block + i), the counter read as one big-endian 128-bit integer
        (wrapping modulo 2**128).
    data : bytes
        Any length; the last block may be partial.

    Returns
    -------
    bytes
        ``data`` XOR key stream, same length as ``data``.

    Raises
    ------
    KeyFormatError
        ``key`` is not 16 bytes.
    FrameError
        (layer ``"ell"``) ``counter_block`` is not 16 bytes.
    """
    key = check_key(key)
    counter_block = _check_field(counter_block, AES_BLOCK_BYTES, "counter block", "ell")
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    # OpenSSL's CTR increments the full 16-byte block big-endian, as EN 13757-4 asks.
    worker = Cipher(algorithms.AES(key), modes.CTR(counter_block)).encryptor()
    return worker.update(bytes(data)) + worker.finalize()
