"""All 100 public telegram vectors through the whole stack (../shared/vectors).

Each vector names its expected outcome (``expect_result``); header fields, the TPL
fields and the decrypted application bytes are compared with the curator's independent
parse.
The values of individual records are checked against the vendor drivers' numbers in
tests/stack/test_records*.py (on the APL) and in test_vector_values below (through the
whole pipeline).
"""

from __future__ import annotations

import pytest

from stack.errors import (
    CrcError,
    DecryptionError,
    KeyMissingError,
    NotEncryptedError,
)
from stack.telegram import FormatCache, Telegram, decode_telegram
from tests.conftest import load_vectors

VECTORS = load_vectors()
_IDS = [v["vid"] for v in VECTORS]


def _hex_and_crc(vector: dict) -> tuple[bytes, str]:
    data = bytes.fromhex(vector["hex"])
    return data, (vector["frame_format"] if vector["hex_has_crc"] else "none")


def _decode(vector: dict, **kwargs) -> Telegram:
    data, crc = _hex_and_crc(vector)
    return decode_telegram(data, vector["key"], crc=crc, **kwargs)


def _check_header(telegram: Telegram, expected: dict) -> None:
    link = telegram.link
    assert link.manufacturer == expected["manufacturer"]
    assert link.id == expected["id"]
    assert link.version == int(expected["version"], 16)
    assert link.device_type == int(expected["device_type"], 16)
    assert link.device_type_name == expected["device_type_name"]
    assert link.c_field == int(expected["c_field"], 16)
    tpl_address = expected.get("tpl_address")
    if tpl_address:
        info = telegram.to_dict()["tpl_address"]
        assert info["manufacturer"] == tpl_address["manufacturer"]
        assert info["id"] == tpl_address["id"]
        assert info["version"] == int(tpl_address["version"], 16)
        assert info["device_type"] == int(tpl_address["device_type"], 16)


def _check_security_fields(telegram: Telegram, security: dict) -> None:
    ell = security.get("ell")
    assert (telegram.ell.ci if telegram.ell else None) == (
        int(ell, 16) if ell else None
    )
    assert (telegram.afl is not None) == bool(security.get("afl"))
    if security.get("tpl_ci") and telegram.tpl is not None:
        assert telegram.tpl.ci == int(security["tpl_ci"], 16)
        assert telegram.security_mode == security["tpl_security_mode"]
    if security.get("acc"):
        assert telegram.tpl.access_number == int(security["acc"], 16)
        assert telegram.tpl.status == int(security["sts"], 16)
        assert telegram.tpl.config == int(security["cfg"], 16)
    if security.get("cfg_ext"):
        assert telegram.tpl.config_ext == int(security["cfg_ext"], 16)


def test_vectors_present(shared):
    assert len(VECTORS) == 100


@pytest.mark.parametrize("vector", VECTORS, ids=_IDS)
def test_vector(vector, shared):
    result = vector["expect_result"]
    if result == "crc_fail":
        data, crc = _hex_and_crc(vector)
        with pytest.raises(CrcError):
            decode_telegram(data, vector["key"], crc=crc)
        if crc == "A":
            with pytest.raises(CrcError):
                decode_telegram(data, vector["key"], crc="auto")
        else:
            # A format-B frame is as long as a CRC-less one (its L counts the CRCs), so
            # 'auto' cannot tell a B frame with a bad CRC from a frame without CRCs: it
            # must then say that it checked no CRC.
            assert decode_telegram(data, vector["key"], crc="auto").crc_format is None
        return
    formats = FormatCache()
    if vector["category"] == "ell_ctr_compact":
        # A compact frame decodes only after a full frame of the same meter: feed the
        # full-frame vector of that meter (same key) first.
        full = next(
            v
            for v in VECTORS
            if v["category"] == "ell_ctr"
            and v["expected"]["id"] == vector["expected"]["id"]
        )
        assert _decode(full, formats=formats).error is None
    telegram = _decode(vector, formats=formats)
    assert telegram.crc_format == (
        vector["frame_format"] if vector["hex_has_crc"] else None
    )
    _check_header(telegram, vector["expected"])
    if result == "ok":
        assert telegram.error is None, telegram.error
        _check_security_fields(telegram, vector["security"])
        apl = vector["expected"].get("apl_hex_after_tpl_header")
        if apl is not None:
            assert telegram.payload.hex() == apl.lower()
        if vector["category"] in ("mode5", "mode7", "ell_ctr", "ell_ctr_compact"):
            assert telegram.encrypted and telegram.decrypted
        elif vector["category"] == "predecrypted":
            assert telegram.predecrypted and not telegram.decrypted
            assert telegram.warnings
        else:
            assert not telegram.encrypted
        if telegram.tpl is not None and telegram.tpl.content == "records":
            assert telegram.records, "a records payload gave no records"
    elif result in ("ok_dll_only", "no_key"):
        assert telegram.encrypted and not telegram.decrypted
        assert isinstance(telegram.error, KeyMissingError)
        assert telegram.records == ()
    elif result == "decrypt_fail":
        assert telegram.encrypted and not telegram.decrypted
        assert isinstance(telegram.error, DecryptionError)
        assert telegram.records == ()
    else:  # pragma: no cover - a new category in the vectors file
        pytest.fail(f"unknown expect_result {result!r}")


_WITH_FORMAT_A = [v for v in VECTORS if v.get("hex_frame_a_with_crc")]


@pytest.mark.parametrize(
    "vector", _WITH_FORMAT_A, ids=[v["vid"] for v in _WITH_FORMAT_A]
)
def test_vector_format_a_same_result(vector, shared):
    """The curator's format-A re-encoding decodes to the same telegram.

    Both with the CRC format given and with it detected.
    """
    plain = decode_telegram(bytes.fromhex(vector["hex"]), vector["key"])
    framed = bytes.fromhex(vector["hex_frame_a_with_crc"])
    for crc in ("A", "auto"):
        telegram = decode_telegram(framed, vector["key"], crc=crc)
        assert telegram.crc_format == "A"
        assert plain.crc_format is None
        assert {**telegram.to_dict(), "crc_format": None} == plain.to_dict()


_PREDECRYPTED = [v for v in VECTORS if v["category"] == "predecrypted"]


@pytest.mark.parametrize("vector", _PREDECRYPTED, ids=[v["vid"] for v in _PREDECRYPTED])
def test_predecrypted_refused_when_key_configured(vector, shared):
    """A clear payload under an 'encrypted' header: not silently accepted with a key."""
    telegram = decode_telegram(bytes.fromhex(vector["hex"]), bytes(range(16)))
    assert isinstance(telegram.error, NotEncryptedError)
    assert telegram.records == ()
    assert not telegram.decrypted


def test_compact_without_full_frame_is_reported(shared):
    vector = next(v for v in VECTORS if v["category"] == "ell_ctr_compact")
    telegram = _decode(vector, formats=FormatCache())
    assert telegram.decrypted and telegram.error is None
    assert telegram.records == ()
    assert telegram.compact_signature == 0xA8ED
    assert any("compact" in w for w in telegram.warnings)
