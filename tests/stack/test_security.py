"""Tests of stack.security: NIST/RFC examples, the shared vectors and round trips."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from stack.crc import crc16
from stack.errors import FrameError, KeyFormatError
from stack.security import (
    DC_KENC_METER,
    DC_KENC_OTHER,
    DC_KMAC_METER,
    DC_KMAC_OTHER,
    KeyRing,
    aes_cmac,
    ctr_crypt,
    decrypt_cbc,
    derive_key,
    ell_counter_block,
    encrypt_cbc,
    mode5_iv,
    parse_key,
)
from tests.conftest import load_vectors

# --- published examples (typed in from the documents) -------------------------------

# NIST SP 800-38A appendix F and RFC 4493 section 4 share this key and plain text.
NIST_KEY = bytes.fromhex("2b7e151628aed2a6abf7158809cf4f3c")
NIST_PLAIN = bytes.fromhex(
    "6bc1bee22e409f96e93d7e117393172a"
    "ae2d8a571e03ac9c9eb76fac45af8e51"
    "30c81c46a35ce411e5fbc1191a0a52ef"
    "f69f2445df4f9b17ad2b417be66c3710"
)


@pytest.mark.parametrize(
    ("n_bytes", "tag_hex"),
    [
        (0, "bb1d6929e95937287fa37d129b756746"),  # RFC 4493 example 1
        (16, "070a16b46b4d4144f79bdd9dd04a287c"),  # example 2
        (40, "dfa66747de9ae63030ca32611497c827"),  # example 3
        (64, "51f0bebf7e3b9d92fc49741779363cfe"),  # example 4
    ],
)
def test_aes_cmac_rfc4493(n_bytes: int, tag_hex: str) -> None:
    assert aes_cmac(NIST_KEY, NIST_PLAIN[:n_bytes]) == bytes.fromhex(tag_hex)


# SP 800-38A F.2.1 (CBC-AES128.Encrypt)
CBC_IV = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
CBC_CIPHER = bytes.fromhex(
    "7649abac8119b246cee98e9b12e9197d"
    "5086cb9b507219ee95db113a917678b2"
    "73bed6b8e3c1743b7116e69e22229516"
    "3ff1caa1681fac09120eca307586e1a7"
)


def test_cbc_sp800_38a_encrypt() -> None:
    assert encrypt_cbc(NIST_KEY, CBC_IV, NIST_PLAIN) == CBC_CIPHER


def test_cbc_sp800_38a_decrypt() -> None:
    assert decrypt_cbc(NIST_KEY, CBC_IV, CBC_CIPHER) == NIST_PLAIN


def test_cbc_fips197_single_block() -> None:
    # FIPS-197 appendix C.1: one block under a zero IV is plain AES (as mode 7 uses it).
    key = bytes(range(16))
    plain = bytes.fromhex("00112233445566778899aabbccddeeff")
    cipher = bytes.fromhex("69c4e0d86a7b0430d8cdb78070b4c55a")
    assert encrypt_cbc(key, bytes(16), plain) == cipher
    assert decrypt_cbc(key, bytes(16), cipher) == plain


# SP 800-38A F.5.1 (CTR-AES128.Encrypt)
CTR_COUNTER = bytes.fromhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff")
CTR_CIPHER = bytes.fromhex(
    "874d6191b620e3261bef6864990db6ce"
    "9806f66b7970fdff8617187bb9fffdff"
    "5ae4df3edbd5d35e5b4f09020db03eab"
    "1e031dda2fbe03d1792170a0f3009cee"
)


def test_ctr_sp800_38a() -> None:
    assert ctr_crypt(NIST_KEY, CTR_COUNTER, NIST_PLAIN) == CTR_CIPHER
    assert ctr_crypt(NIST_KEY, CTR_COUNTER, CTR_CIPHER) == NIST_PLAIN


def test_ctr_partial_last_block() -> None:
    # A partial block uses the first bytes of its key stream block.
    assert ctr_crypt(NIST_KEY, CTR_COUNTER, NIST_PLAIN[:37]) == CTR_CIPHER[:37]


def test_empty_inputs() -> None:
    assert encrypt_cbc(NIST_KEY, CBC_IV, b"") == b""
    assert decrypt_cbc(NIST_KEY, CBC_IV, b"") == b""
    assert ctr_crypt(NIST_KEY, CTR_COUNTER, b"") == b""


# --- an independent CTR reference: AES-ECB of explicit counter values ---------------


def _ctr_reference(key: bytes, counter_block: bytes, data: bytes) -> bytes:
    ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    start = int.from_bytes(counter_block, "big")
    n_blocks = -(-len(data) // 16)
    counters = b"".join(
        ((start + i) % (1 << 128)).to_bytes(16, "big") for i in range(n_blocks)
    )
    stream = ecb.update(counters) + ecb.finalize()
    return bytes(a ^ b for a, b in zip(data, stream, strict=False))


@pytest.mark.parametrize(
    "counter_hex",
    [
        "ffffffffffffffffffffffffffffffff",  # wraps to zero
        "0000000000000000ffffffffffffffff",  # carries out of the low 64 bits
        "000000000000000000000000000000ff",  # carries out of the BC byte
    ],
)
def test_ctr_increments_whole_block(counter_hex: str) -> None:
    data = bytes(range(40))
    counter = bytes.fromhex(counter_hex)
    assert ctr_crypt(NIST_KEY, counter, data) == _ctr_reference(NIST_KEY, counter, data)


# --- hypothesis round trips ---------------------------------------------------------

KEYS = st.binary(min_size=16, max_size=16)
BLOCKS16 = st.integers(min_value=0, max_value=8).flatmap(
    lambda n: st.binary(min_size=16 * n, max_size=16 * n)
)


@settings(max_examples=60, deadline=None)
@given(key=KEYS, iv=st.binary(min_size=16, max_size=16), data=BLOCKS16)
def test_cbc_round_trip(key: bytes, iv: bytes, data: bytes) -> None:
    cipher = encrypt_cbc(key, iv, data)
    assert len(cipher) == len(data)
    assert decrypt_cbc(key, iv, cipher) == data


@settings(max_examples=60, deadline=None)
@given(
    key=KEYS, counter=st.binary(min_size=16, max_size=16), data=st.binary(max_size=100)
)
def test_ctr_round_trip_and_reference(key: bytes, counter: bytes, data: bytes) -> None:
    cipher = ctr_crypt(key, counter, data)
    assert cipher == _ctr_reference(key, counter, data)
    assert ctr_crypt(key, counter, cipher) == data


# --- argument errors ----------------------------------------------------------------


@pytest.mark.parametrize("n_bytes", [1, 15, 17, 33])
def test_cbc_rejects_partial_blocks(n_bytes: int) -> None:
    for func in (encrypt_cbc, decrypt_cbc):
        with pytest.raises(FrameError) as info:
            func(NIST_KEY, CBC_IV, bytes(n_bytes))
        assert info.value.layer == "tpl"


@pytest.mark.parametrize("key", [b"", bytes(15), bytes(17), bytes(32), "00" * 16])
def test_bad_key_size(key: object) -> None:
    with pytest.raises(KeyFormatError):
        decrypt_cbc(key, CBC_IV, bytes(16))  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        ctr_crypt(key, CTR_COUNTER, b"abc")  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        aes_cmac(key, b"")  # type: ignore[arg-type]
    with pytest.raises(KeyFormatError):
        derive_key(key, DC_KENC_METER, bytes(4), bytes(4))  # type: ignore[arg-type]


def test_bad_iv_and_counter_size() -> None:
    with pytest.raises(FrameError):
        decrypt_cbc(NIST_KEY, bytes(15), bytes(16))
    with pytest.raises(FrameError) as info:
        ctr_crypt(NIST_KEY, bytes(8), b"abc")
    assert info.value.layer == "ell"


@pytest.mark.parametrize(
    ("manufacturer", "address", "acc"),
    [
        (bytes(1), bytes(6), 0),
        (bytes(2), bytes(5), 0),
        (bytes(2), bytes(6), 256),
        (bytes(2), bytes(6), -1),
        (bytes(3), bytes(6), 0),
        ("ab", bytes(6), 0),
    ],
)
def test_mode5_iv_bad_fields(manufacturer: bytes, address: bytes, acc: int) -> None:
    with pytest.raises(FrameError) as info:
        mode5_iv(manufacturer, address, acc)
    assert info.value.layer == "tpl"


def test_mode5_iv_layout() -> None:
    # Made-up header fields; the layout is the one of reference section 3.5.
    iv = mode5_iv(b"\xa1\xb2", bytes.fromhex("010203040506"), 0x5C)
    assert iv == bytes.fromhex("a1b2010203040506") + b"\x5c" * 8


def test_derive_key_bad_fields() -> None:
    with pytest.raises(FrameError):
        derive_key(NIST_KEY, 0x100, bytes(4), bytes(4))
    with pytest.raises(FrameError):
        derive_key(NIST_KEY, DC_KENC_METER, bytes(3), bytes(4))
    with pytest.raises(FrameError):
        derive_key(NIST_KEY, DC_KENC_METER, bytes(4), bytes(6))


def test_derive_key_is_cmac_of_kdf_block() -> None:
    # Reference 3.6: CMAC over DC | MCR | ID | 07 x 7; the four DCs give four keys.
    mcr, meter_id = bytes.fromhex("0a0b0c0d"), bytes.fromhex("78563412")
    keys = set()
    for dc in (DC_KENC_METER, DC_KMAC_METER, DC_KENC_OTHER, DC_KMAC_OTHER):
        block = bytes([dc]) + mcr + meter_id + b"\x07" * 7
        assert len(block) == 16
        derived = derive_key(NIST_KEY, dc, mcr, meter_id)
        assert derived == aes_cmac(NIST_KEY, block)
        keys.add(derived)
    assert len(keys) == 4
    assert (DC_KENC_METER, DC_KMAC_METER, DC_KENC_OTHER, DC_KMAC_OTHER) == (
        0,
        1,
        0x10,
        0x11,
    )


def test_ell_counter_block_layout_and_cc_bits() -> None:
    m, a, sn = b"\x11\x22", bytes.fromhex("334455667788"), bytes.fromhex("99aabbcc")
    block = ell_counter_block(m, a, 0xFF, sn)
    # H (0x10) and R (0x02) cleared, all other CC bits kept; FN and BC zero.
    assert block == m + a + b"\xed" + sn + b"\x00\x00\x00"
    assert ell_counter_block(m, a, 0x12, sn)[8] == 0
    assert ell_counter_block(m, a, 0x20, sn, fn=0x0102, bc=7)[13:] == b"\x02\x01\x07"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cc": 256},
        {"fn": 1 << 16},
        {"bc": -1},
        {"session": bytes(3)},
        {"manufacturer": bytes(1)},
        {"address": bytes(8)},
    ],
)
def test_ell_counter_block_bad_fields(kwargs: dict) -> None:
    args = {"manufacturer": bytes(2), "address": bytes(6), "cc": 0, "session": bytes(4)}
    args.update(kwargs)
    with pytest.raises(FrameError) as info:
        ell_counter_block(**args)
    assert info.value.layer == "ell"


# --- shared vectors: headers parsed by hand here, following the reference -----------

_ELL_BYTES = {0x8C: 3, 0x8D: 9, 0x8E: 11, 0x8F: 17}  # CI + header, reference 3.1
_LONG_TPL = {0x72, 0x73, 0x75, 0x8B, 0x6F, 0x5B, 0x80}  # long TPL header CIs


def _frame(vector: dict) -> bytes:
    return bytes.fromhex(vector.get("hex_without_crc") or vector["hex"])


def _tpl_offset(data: bytes) -> int:
    """Offset of the TPL CI, after the 10-byte DLL header and any ELL and AFL."""
    pos = 10
    if data[pos] in _ELL_BYTES:
        pos += _ELL_BYTES[data[pos]]
    if data[pos] == 0x90:  # AFL: CI, LEN, then LEN bytes
        pos += 2 + data[pos + 1]
    return pos


def _iv_fields(data: bytes) -> tuple[bytes, bytes, int]:
    """(M, A, offset of ACC) of the TPL: long header if present, else the DLL."""
    pos = _tpl_offset(data)
    if data[pos] in _LONG_TPL:
        tpl_id, tpl_m, ver_type = (
            data[pos + 1 : pos + 5],
            data[pos + 5 : pos + 7],
            data[pos + 7 : pos + 9],
        )
        return tpl_m, tpl_id + ver_type, pos + 9
    return data[2:4], data[4:10], pos + 1


def _with(key: str) -> list[dict]:
    return [v for v in load_vectors() if (v.get("security") or {}).get(key)]


def _ids(vectors: list[dict]) -> list[str]:
    return [v["vid"] for v in vectors]


MODE5 = _with("mode5_iv")
ELL_CTR = _with("ell_ctr_iv")
MODE7 = _with("mode7_kenc")


@pytest.mark.parametrize("vector", MODE5, ids=_ids(MODE5))
def test_vector_mode5_iv(shared, vector: dict) -> None:
    data = _frame(vector)
    manufacturer, address, acc_at = _iv_fields(data)
    assert data[acc_at] == int(vector["security"]["acc"], 16)
    iv = mode5_iv(manufacturer, address, data[acc_at])
    assert iv.hex() == vector["security"]["mode5_iv"].lower()


def _mode5_decrypt(vector: dict) -> tuple[bytes, bytes]:
    """(decrypted N blocks, clear bytes after them) of a mode-5 vector."""
    data = _frame(vector)
    manufacturer, address, acc_at = _iv_fields(data)
    cfg = data[acc_at + 2] | data[acc_at + 3] << 8
    assert f"0x{cfg:04x}" == vector["security"]["cfg"]
    assert (cfg >> 8) & 0x1F == 5
    start = acc_at + 4  # right after CFG
    end = start + 16 * ((cfg >> 4) & 0xF)
    key = bytes.fromhex(vector["key"])
    iv = mode5_iv(manufacturer, address, data[acc_at])
    return decrypt_cbc(key, iv, data[start:end]), data[end:]


MODE5_OK = [v for v in MODE5 if v["key"] and v["expect_result"] == "ok"]
MODE5_BAD = [v for v in MODE5 if v["key"] and v["expect_result"] == "decrypt_fail"]


@pytest.mark.parametrize("vector", MODE5_OK, ids=_ids(MODE5_OK))
def test_vector_mode5_decrypt(shared, vector: dict) -> None:
    plain, clear_tail = _mode5_decrypt(vector)
    expected = bytes.fromhex(vector["expected"]["apl_hex_after_tpl_header"])
    assert plain[:2] == b"\x2f\x2f"
    # The APL is the decrypted blocks followed by any clear bytes after them.
    assert plain + clear_tail == expected


@pytest.mark.parametrize("vector", MODE5_BAD, ids=_ids(MODE5_BAD))
def test_vector_mode5_wrong_key(shared, vector: dict) -> None:
    plain, _ = _mode5_decrypt(vector)
    assert plain[:2] != b"\x2f\x2f"


def test_vector_lists_not_empty(shared) -> None:
    # Guards the parametrized tests above against silently collecting nothing.
    assert len(MODE5_OK) >= 20 and MODE5_BAD and ELL_CTR and MODE7


@pytest.mark.parametrize("vector", ELL_CTR, ids=_ids(ELL_CTR))
def test_vector_ell_ctr(shared, vector: dict) -> None:
    data = _frame(vector)
    assert data[10] in (0x8D, 0x8F)
    cc, session = data[11], data[13:17]
    counter = ell_counter_block(data[2:4], data[4:10], cc, session)
    assert counter.hex() == vector["security"]["ell_ctr_iv"].lower()
    # Decryption starts at the PayloadCRC (LSB first), which covers the rest.
    plain = ctr_crypt(bytes.fromhex(vector["key"]), counter, data[17:])
    crc_ok = int.from_bytes(plain[:2], "little") == crc16(plain[2:])
    if vector["expect_result"] == "ok":
        assert crc_ok
        assert plain[2] == int(vector["security"]["tpl_ci"], 16)
        assert plain[3:].hex() == vector["expected"]["apl_hex_after_tpl_header"].lower()
    else:
        assert not crc_ok


@pytest.mark.parametrize("vector", MODE7, ids=_ids(MODE7))
def test_vector_mode7(shared, vector: dict) -> None:
    data = _frame(vector)
    master = bytes.fromhex(vector["key"])
    afl = 10 + _ELL_BYTES[data[10]]
    assert data[afl] == 0x90
    fc = data[afl + 2] | data[afl + 3] << 8
    assert fc & 0x3C00 == 0x2C00  # MCL, MCR and MAC present, no ML, no KI
    mcl, mcr, mac = data[afl + 4], data[afl + 5 : afl + 9], data[afl + 9 : afl + 17]
    assert mcl & 0x0F == 5  # AES-CMAC, 8-byte MAC
    tpl = _tpl_offset(data)
    assert tpl == afl + 17 and data[tpl] == 0x7A  # short TPL: the id is the DLL's
    kenc = derive_key(master, DC_KENC_METER, mcr, data[4:8])
    kmac = derive_key(master, DC_KMAC_METER, mcr, data[4:8])
    assert kenc.hex() == vector["security"]["mode7_kenc"]
    assert kmac.hex() == vector["security"]["mode7_kmac"]
    assert aes_cmac(kmac, bytes([mcl]) + mcr + data[tpl:])[:8] == mac
    cfg = data[tpl + 3] | data[tpl + 4] << 8
    start = tpl + 6  # CI ACC STS CFG(2) CFG-ext(1)
    end = start + 16 * ((cfg >> 4) & 0xF)
    plain = decrypt_cbc(kenc, bytes(16), data[start:end])
    expected = bytes.fromhex(vector["expected"]["apl_hex_after_tpl_header"])
    assert plain + data[end:] == expected


# --- keys ---------------------------------------------------------------------------

KEY_A = bytes(range(16))  # made-up keys
KEY_B = bytes(range(0xF0, 0x100))
KEY_C = bytes([0x5A] * 16)


@pytest.mark.parametrize(
    "text",
    [
        KEY_B.hex(),
        KEY_B.hex().upper(),
        "  " + KEY_B.hex() + "\n",
        ":".join(f"{b:02x}" for b in KEY_B),
        " ".join(f"{b:02X}" for b in KEY_B),
        "f0f1f2f3 f4f5f6f7\tf8f9fafb fcfdfeff",
    ],
)
def test_parse_key_accepts(text: str) -> None:
    assert parse_key(text) == KEY_B


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "got 0"),
        (KEY_B.hex()[:-1], "got 31"),
        (KEY_B.hex() + "00", "got 34"),
        ("0x" + KEY_B.hex(), "position 2"),
        (KEY_B.hex()[:10] + "g" + KEY_B.hex()[11:], "position 11"),
        (KEY_B.hex()[:8] + "-" + KEY_B.hex()[8:], "position 9"),
    ],
)
def test_parse_key_rejects_without_echo(text: str, words: str) -> None:
    with pytest.raises(KeyFormatError) as info:
        parse_key(text)
    message = str(info.value)
    assert words in message
    assert KEY_B.hex()[:10] not in message.lower()
    assert info.value.line is None


KEY_FILE = f"""
# meters of the test house
12345678 {KEY_A.hex()}
ABCDEF01   {KEY_B.hex().upper()}   # upper-case id and key, trailing comment

   # indented comment
* {":".join(f"{b:02x}" for b in KEY_C)}
"""


def test_keyring_from_text() -> None:
    ring = KeyRing.from_text(KEY_FILE)
    assert len(ring) == 3
    assert ring.ids == ("12345678", "abcdef01", "*")
    assert ring.get("12345678") == KEY_A
    assert ring.get("abcdef01") == KEY_B
    assert ring.get("ABCDEF01") == KEY_B  # ids are case-insensitive
    assert ring.get("99999999") == KEY_C  # the wildcard fills in
    assert "99999999" in ring and "12345678" in ring


def test_keyring_without_wildcard() -> None:
    ring = KeyRing.from_text(f"12345678 {KEY_A.hex()}\n")
    assert ring.get("87654321") is None
    assert "87654321" not in ring
    assert "12345678" in ring
    assert 12345678 not in ring
    assert ring.get(12345678) is None  # type: ignore[arg-type]


def test_keyring_exact_beats_wildcard_in_any_order() -> None:
    ring = KeyRing.from_text(f"* {KEY_C.hex()}\n12345678 {KEY_A.hex()}\n")
    assert ring.get("12345678") == KEY_A
    assert ring.get("12345679") == KEY_C


def test_keyring_empty_text() -> None:
    ring = KeyRing.from_text("\n  \n# nothing here\n")
    assert len(ring) == 0 and ring.get("12345678") is None


def test_keyring_single_and_add() -> None:
    ring = KeyRing.single(KEY_A)
    assert len(ring) == 1 and ring.get("00000001") == KEY_A
    ring.add("0000000A", KEY_B.hex())
    assert ring.get("0000000a") == KEY_B
    ring.add("0000000a", KEY_C)  # add replaces
    assert ring.get("0000000A") == KEY_C and len(ring) == 2
    assert KeyRing.single(KEY_B.hex()).get("12345678") == KEY_B


def test_keyring_repr_hides_keys() -> None:
    ring = KeyRing.from_text(KEY_FILE)
    text = repr(ring)
    assert "12345678" in text and "'*'" in text
    for key in (KEY_A, KEY_B, KEY_C):
        assert key.hex()[:8] not in text.lower()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (f"1234567 {KEY_A.hex()}", 1, "got 7 characters"),
        (f"\n# c\n123456789 {KEY_A.hex()}", 3, "got 9 characters"),
        (f"1234567x {KEY_A.hex()}", 1, "not a hex digit"),
        ("12345678", 1, "expected 'ID KEYHEX'"),
        (f"12345678 {KEY_A.hex()}\n\n12345678 {KEY_B.hex()}", 3, "given twice"),
        (f"*  {KEY_A.hex()}\n*  {KEY_B.hex()}", 2, "given twice"),
        (f"12345678 {KEY_A.hex()}\n87654321 {KEY_B.hex()[:30]}", 2, "got 30"),
        (f"{KEY_B.hex()} 12345678", 1, "got 32 characters"),  # columns swapped
        (f"12345678 {KEY_B.hex()[:6]}#{KEY_B.hex()[6:]}", 1, "got 6"),
    ],
)
def test_keyring_bad_lines(text: str, line: int, words: str) -> None:
    with pytest.raises(KeyFormatError) as info:
        KeyRing.from_text(text)
    assert info.value.line == line
    message = str(info.value)
    assert message.startswith(f"line {line}: ")
    assert words in message
    for key in (KEY_A, KEY_B):
        assert key.hex()[:8] not in message.lower()


@pytest.mark.parametrize("meter_id", ["1234567", "", "12 45678", "g2345678", "**"])
def test_keyring_add_rejects_bad_id(meter_id: str) -> None:
    with pytest.raises(KeyFormatError):
        KeyRing().add(meter_id, KEY_A)


def test_keyring_add_rejects_bad_key() -> None:
    with pytest.raises(KeyFormatError):
        KeyRing().add("12345678", bytes(15))
    with pytest.raises(KeyFormatError):
        KeyRing.single("00")


def test_keyring_from_text_rejects_bytes() -> None:
    with pytest.raises(KeyFormatError):
        KeyRing.from_text(f"12345678 {KEY_A.hex()}".encode())  # type: ignore[arg-type]
