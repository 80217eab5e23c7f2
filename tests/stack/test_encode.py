"""encode_telegram: the shared vectors rebuilt byte for byte, layout facts, refusals.

The rebuild gets only what a person reading a vector would know: the parsed header
fields (``expected`` and ``security``), the few header bytes that parse does not list
(ELL CC, ACC and SN, AFL MCL and MCR, read from the vector's own bytes), the key and the
plain APL (``expected.apl_hex_after_tpl_header``).  AES-CBC, AES-CTR, AES-CMAC and the
CRCs are deterministic, so the result must equal the frame a real meter sent, byte for
byte.
Nothing of a vector is copied here: every test reads ../shared/vectors.
"""

from __future__ import annotations

import dataclasses

import pytest

from stack.crc import crc16
from stack.encode import TelegramSpec, encode_telegram
from stack.errors import KeyFormatError
from stack.frame import strip_crcs
from stack.link import encode_manufacturer
from stack.records import make_record
from stack.security import decrypt_cbc, mode5_iv
from tests.conftest import load_vectors

VECTORS = {v["vid"]: v for v in load_vectors()}
# Categories whose frames an honest encoder can reproduce ("predecrypted" cannot: its
# header says encrypted but the bytes are clear; negatives are broken on purpose).
_REBUILDABLE = (
    "plain",
    "mode5",
    "mode7",
    "ell_ctr",
    "ell_ctr_compact",
    "manufacturer_specific",
    "frame_with_crc",
)
_ELL_BODY_LEN = {0x8C: 2, 0x8D: 8}  # bytes after the ELL CI (EN 13757-4, ELL I / II)
_AFL_FC_MCL_MCR_MAC = 0x2C00  # the only AFL layout in the vectors (reference 3.3)
_FILLER = 0x2F
_CHECK = b"\x2f\x2f"
_CFG_OWNED = 0x1FF0  # CFG security mode + block count, set by the encoder


def _vids(pred) -> list[str]:
    return [vid for vid, v in VECTORS.items() if pred(v)]


def _rebuildable(v: dict) -> bool:
    return v["category"] in _REBUILDABLE and v["expect_result"] == "ok"


def _no_crc_frame(v: dict) -> bytes:
    return bytes.fromhex(v["hex_without_crc"] if v["hex_has_crc"] else v["hex"])


def _plain_apl(v: dict) -> bytes:
    """APL after the TPL header without the leading 2F 2F of modes 5/7."""
    apl = bytes.fromhex(v["expected"]["apl_hex_after_tpl_header"])
    if v["security"]["tpl_security_mode"] in (5, 7):
        assert apl[:2] == _CHECK, "vector: mode 5/7 plaintext must start with 2F 2F"
        apl = apl[2:]
    return apl


def _manufacturer(v: dict, frame: bytes) -> str | int:
    # Letters where they are the whole truth; the raw code where bit 15 is set (letters
    # cannot say that), after checking that its letters agree with the vector.
    code = int.from_bytes(frame[2:4], "little")
    assert encode_manufacturer(v["expected"]["manufacturer"]) == code & 0x7FFF
    return code if code & 0x8000 else v["expected"]["manufacturer"]


def _link_fields(v: dict, frame: bytes) -> dict:
    exp = v["expected"]
    return {
        "manufacturer": _manufacturer(v, frame),
        "meter_id": exp["id"],
        "version": int(exp["version"], 16),
        "device_type": int(exp["device_type"], 16),
        "c_field": int(exp["c_field"], 16),
        "key": v["key"],
        "frame_format": v["frame_format"],
    }


def _ell_afl_fields(v: dict, frame: bytes) -> dict:
    sec = v["security"]
    fields: dict = {}
    pos = 10
    if sec["ell"]:
        ell_ci = int(sec["ell"], 16)
        assert frame[pos] == ell_ci
        fields |= {
            "ell_ci": ell_ci,
            "ell_cc": frame[pos + 1],
            "ell_access_number": frame[pos + 2],
        }
        if ell_ci == 0x8D:
            fields["ell_session"] = int.from_bytes(frame[pos + 3 : pos + 7], "little")
            fields["ell_encrypt"] = sec["ell_security"] == 1
        pos += 1 + _ELL_BODY_LEN[ell_ci]
    if sec["afl"]:
        assert frame[pos] == 0x90
        assert int.from_bytes(frame[pos + 2 : pos + 4], "little") == _AFL_FC_MCL_MCR_MAC
        fields["afl_mcl"] = frame[pos + 4]
        fields["afl_counter"] = int.from_bytes(frame[pos + 5 : pos + 9], "little")
    return fields


def _tpl_fields(v: dict) -> dict:
    sec, exp = v["security"], v["expected"]
    fields: dict = {"ci": int(sec["tpl_ci"], 16)}
    address = exp.get("tpl_address")
    if address:
        fields["tpl_address"] = (
            address["manufacturer"],
            address["id"],
            int(address["version"], 16),
            int(address["device_type"], 16),
        )
    if sec.get("acc") is None:  # headerless CI
        return fields
    mode = sec["tpl_security_mode"]
    cfg = int(sec["cfg"], 16)
    fields |= {
        "access_number": int(sec["acc"], 16),
        "status": int(sec["sts"], 16),
        "security_mode": mode,
    }
    if mode:
        fields["encrypted_blocks"] = (cfg >> 4) & 0x0F
        fields["config_flags"] = cfg & ~_CFG_OWNED
    else:
        fields["config_flags"] = cfg
    if sec.get("cfg_ext"):
        fields["config_ext"] = int(sec["cfg_ext"], 16)
    return fields


def spec_from_vector(v: dict) -> TelegramSpec:
    """A spec from a vector's parsed fields and plain APL (not from its cipher text)."""
    frame = _no_crc_frame(v)
    return TelegramSpec(
        **_link_fields(v, frame),
        **_ell_afl_fields(v, frame),
        **_tpl_fields(v),
        payload=_plain_apl(v),
    )


# --- the vectors, byte for byte -------------------------------------------------------


@pytest.mark.parametrize("vid", _vids(_rebuildable))
def test_vector_rebuilt_byte_for_byte(shared, vid: str) -> None:
    v = VECTORS[vid]
    assert encode_telegram(spec_from_vector(v)).hex() == v["hex"].lower()


@pytest.mark.parametrize(
    "vid", _vids(lambda v: _rebuildable(v) and v.get("hex_frame_a_with_crc"))
)
def test_vector_rebuilt_as_frame_format_a(shared, vid: str) -> None:
    v = VECTORS[vid]
    frame = encode_telegram(spec_from_vector(v), frame_format="A")
    assert frame.hex() == v["hex_frame_a_with_crc"].lower()


def _default_blocks_fit(v: dict) -> bool:
    # Vectors whose encrypted region is exactly 2F 2F + APL padded with fillers, so
    # that the encoder's own padding and block count must reproduce it.
    if not _rebuildable(v) or v["security"]["tpl_security_mode"] not in (5, 7):
        return False
    n_blocks = (int(v["security"]["cfg"], 16) >> 4) & 0x0F
    apl = bytes.fromhex(v["expected"]["apl_hex_after_tpl_header"])
    core = apl.rstrip(bytes([_FILLER]))
    return len(apl) == 16 * n_blocks and -(-max(len(core), 2) // 16) == n_blocks


@pytest.mark.parametrize("vid", _vids(_default_blocks_fit))
def test_vector_padding_and_block_count_are_the_encoders(shared, vid: str) -> None:
    v = VECTORS[vid]
    spec = spec_from_vector(v)
    unpadded = spec.payload.rstrip(bytes([_FILLER]))
    frame = encode_telegram(spec, payload=unpadded, encrypted_blocks=None)
    assert frame.hex() == v["hex"].lower()


@pytest.mark.parametrize(
    "vid", _vids(lambda v: _rebuildable(v) and v["security"]["ell_security"] == 1)
)
def test_vector_ell_encryption_bits_set_by_encoder(shared, vid: str) -> None:
    v = VECTORS[vid]
    spec = spec_from_vector(v)
    assert spec.ell_session >> 29 == 1  # the vector's SN says AES-CTR
    frame = encode_telegram(spec, ell_session=spec.ell_session & 0x1FFF_FFFF)
    assert frame.hex() == v["hex"].lower()


def test_compact_signature_matches_vector_of_same_layout(shared) -> None:
    # v024 (full frame) and v025 (compact) come from the same Kamstrup meter and layout:
    # compacting v024's records must give v025's format signature.
    full, compact = VECTORS["v024"], VECTORS["v025"]
    spec = spec_from_vector(full)
    frame = encode_telegram(
        spec, compact=True, ell_ci=None, ell_session=0, ell_encrypt=False
    )
    assert frame[10] == 0x79
    signature = bytes.fromhex(compact["expected"]["apl_hex_after_tpl_header"])[:2]
    assert frame[11:13] == signature
    assert int.from_bytes(frame[13:15], "little") == crc16(_plain_apl(full))


# --- layout facts on made-up telegrams ------------------------------------------------

BASE = TelegramSpec(
    manufacturer="QWE",
    meter_id="01020304",
    version=0x21,
    device_type=0x16,
    payload=bytes.fromhex("01FD1700"),
)


@pytest.mark.parametrize(
    ("letters", "m_bytes"),
    [("KAM", "2d2c"), ("SON", "ee4d"), ("TCH", "6850"), ("EFE", "c514")],
)
def test_manufacturer_bytes_match_reference_table(letters: str, m_bytes: str) -> None:
    frame = encode_telegram(BASE, manufacturer=letters)
    assert frame[2:4].hex() == m_bytes


def test_link_header_layout() -> None:
    frame = encode_telegram(BASE, meter_id="12345678", c_field=0x46)
    assert frame[0] == len(frame) - 1
    assert frame[1] == 0x46
    assert frame[4:8] == bytes((0x78, 0x56, 0x34, 0x12))  # id sent LSB first
    assert frame[8:10] == bytes((0x21, 0x16))
    assert frame[10:15] == bytes((0x7A, 0, 0, 0, 0))  # short header ACC STS CFG
    assert frame[15:] == BASE.payload


def test_long_header_defaults_to_link_address() -> None:
    frame = encode_telegram(BASE, ci=0x72, access_number=9, status=0x04)
    assert frame[10] == 0x72
    assert frame[11:15] == frame[4:8] and frame[15:17] == frame[2:4]
    assert frame[17:19] == frame[8:10]
    assert frame[19:23] == bytes((9, 0x04, 0, 0))


def test_mode5_caps_at_15_blocks_and_sends_the_rest_clear() -> None:
    key = bytes(range(16))
    payload = bytes((i * 7) & 0xFF for i in range(239))  # 2 + 239 = 241 > 15 blocks
    frame = encode_telegram(
        BASE, security_mode=5, key=key, access_number=0x33, payload=payload
    )
    config = int.from_bytes(frame[13:15], "little")
    assert (config >> 8) & 0x1F == 5 and (config >> 4) & 0x0F == 15
    region = frame[15 : 15 + 240]
    iv = mode5_iv(frame[2:4], frame[4:10], 0x33)
    assert decrypt_cbc(key, iv, region) == _CHECK + payload[:238]
    assert frame[15 + 240 :] == payload[238:]


@pytest.mark.parametrize("size", [0, 110, 111, 112, 200])  # one CRC up to 126 bytes
@pytest.mark.parametrize("fmt", ["A", "B"])
def test_crc_frames_strip_back_to_no_crc_form(size: int, fmt: str) -> None:
    spec = dataclasses.replace(BASE, payload=bytes(i * 13 & 0xFF for i in range(size)))
    frame = encode_telegram(spec, frame_format=fmt)
    assert strip_crcs(frame, fmt) == encode_telegram(spec)


@pytest.mark.parametrize(
    ("size", "fmt", "fits"),
    [
        (241, None, True),
        (242, None, False),  # 10 + 5 + 241 = 256 bytes: L = 255
        (241, "A", True),
        (242, "A", False),
        (237, "B", True),
        (238, "B", False),  # B adds 4 CRC bytes to L past 126 bytes
    ],
)
def test_length_limit_per_frame_format(size: int, fmt: str | None, fits: bool) -> None:
    spec = dataclasses.replace(BASE, payload=bytes(size), frame_format=fmt)
    if fits:
        assert encode_telegram(spec)
    else:
        with pytest.raises(ValueError, match="L would be"):
            encode_telegram(spec)


def test_spec_plus_fields_replace_and_key_stays_out_of_repr() -> None:
    key = bytes(range(100, 116))
    spec = dataclasses.replace(BASE, security_mode=5, key=key.hex())
    assert spec.key == key
    assert key.hex() not in repr(spec) and repr(key) not in repr(spec)
    assert encode_telegram(spec, access_number=1) != encode_telegram(spec)


# --- refusals -------------------------------------------------------------------------

_KEY = bytes(16)
REFUSALS = [
    ({"security_mode": 5}, "needs a key"),
    ({"security_mode": 7, "key": _KEY}, "afl_counter"),
    ({"security_mode": 5, "key": _KEY, "ci": 0x78}, "no TPL header"),
    ({"security_mode": 8, "key": _KEY}, "cannot be encoded"),
    ({"meter_id": "1234567"}, "8 hex digits"),
    ({"meter_id": "1234567x"}, "8 hex digits"),
    ({"meter_id": 12345678}, "8 hex digits"),
    ({"manufacturer": "K4M"}, "three letters"),
    ({"manufacturer": 0x10000}, "manufacturer code"),
    ({"version": 256}, "version"),
    ({"access_number": -1}, "access_number"),
    ({"c_field": True}, "c_field"),
    ({"ell_ci": 0x8C, "ell_encrypt": True, "key": _KEY}, "0x8D or 0x8F"),
    ({"ell_ci": 0x8D, "ell_encrypt": True}, "needs a key"),
    ({"ell_ci": 0x8D, "ell_session": 2 << 29}, "bits 29-31"),
    ({"ell_ci": 0x8D, "ell_session": 1 << 29}, "bits 29-31"),
    ({"ell_session": 5}, "0x8D or 0x8F"),
    ({"ell_ci": 0x86}, "ell_ci"),
    ({"ell_ci": 0x8C, "ell_address": ("QWE", "00000001", 1, 7)}, "0x8E or 0x8F"),
    ({"ell_ci": 0x8E, "ell_address": ("QWE", "00000001", 1)}, "an address is"),
    ({"tpl_address": ("QWE", "00000001", 1, 7)}, "long-header"),
    ({"records": ()}, "not both"),
    ({"records": [b"\x01"], "payload": None}, "Record"),
    ({"ci": 0x8A}, "no application data"),
    ({"ci": 0xA1, "records": (), "payload": None}, "manufacturer specific"),
    ({"ci": 0x8C}, "transport-layer CI"),
    ({"ci": 0x78, "config_flags": 0x8000}, "config_flags"),
    ({"config_flags": 0x0500}, "overlap"),
    ({"config_flags": 0x00F0, "security_mode": 5, "key": _KEY}, "overlap"),
    ({"encrypted_blocks": 16, "security_mode": 5, "key": _KEY}, "encrypted_blocks"),
    ({"encrypted_blocks": 1}, "security mode 5 or 7"),
    ({"afl_counter": 1}, "needs a key"),
    ({"afl_counter": 1 << 32, "key": _KEY}, "afl_counter"),
    ({"afl_counter": 1, "key": _KEY, "afl_mcl": 0x28}, "AES-CMAC"),
    ({"afl_counter": 1, "key": _KEY, "afl_mcl": 0x05}, "bits 4-7"),
    ({"compact": True, "ci": 0x8A, "payload": None}, "no compact form"),
    ({"frame_format": "C"}, "frame_format"),
    ({"compact": True, "payload": b"\x04\x13\x01"}, "apl"),  # record cut short
    (
        {
            "records": (
                make_record("manufacturer_data", b"\x01"),
                make_record("volume", 2.5),
            ),
            "payload": None,
        },
        "must be the last",
    ),
    ({"payload": "01fd1700"}, "payload must be bytes"),
]


@pytest.mark.parametrize(("fields", "message"), REFUSALS)
def test_impossible_specs_refused_before_building(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        encode_telegram(BASE, **fields)


@pytest.mark.parametrize("key", [bytes(15), "00" * 15, "zz" * 16, 1234])
def test_malformed_key_is_key_format_error(key: object) -> None:
    with pytest.raises(KeyFormatError):
        TelegramSpec(manufacturer="QWE", meter_id="01020304", key=key)


def test_unknown_field_is_type_error() -> None:
    with pytest.raises(TypeError):
        encode_telegram(BASE, colour="red")
