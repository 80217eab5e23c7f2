"""Line codes against the shared 3-of-6 vectors, the reference tables, round trips."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.linecode import (
    CODE_3OF6,
    bits_to_bytes,
    bytes_to_bits,
    decode_3of6,
    decode_line,
    decode_manchester,
    decode_nrz,
    encode_3of6,
    encode_line,
    encode_manchester,
    encode_nrz,
)

FAST = settings(max_examples=60, deadline=None)


def _bits(text: str) -> np.ndarray:
    return np.array([int(c) for c in text], dtype=np.uint8)


def _three_of_six_vectors(shared) -> list[dict]:
    with (shared / "vectors" / "phy_vectors.json").open() as fh:
        return json.load(fh)["three_of_six"]


def test_3of6_matches_shared_vectors(shared):
    vectors = _three_of_six_vectors(shared)
    assert vectors, "phy_vectors.json holds no 3-of-6 vectors"
    for vec in vectors:
        data = bytes.fromhex(vec["data_hex"])
        chips = encode_3of6(data)
        if "encoded_hex_msb_first" in vec:
            expected = bytes_to_bits(bytes.fromhex(vec["encoded_hex_msb_first"]))
            assert chips.size == vec["encoded_bits"]
        else:
            expected = _bits(vec["encoded_bits_string"])
        np.testing.assert_array_equal(chips, expected[: chips.size])
        assert chips.size == 12 * len(data)
        assert decode_3of6(expected[: chips.size]) == (data, 0)


def test_3of6_table_is_the_standard_code():
    # Reference 1.5: 16 distinct 6-bit words, each with exactly three ones.
    assert len(set(CODE_3OF6)) == 16
    assert all(bin(word).count("1") == 3 for word in CODE_3OF6)
    # Worked examples of the reference table: nibble 0 -> 010110, F -> 101001.
    np.testing.assert_array_equal(encode_3of6(b"\x0f"), _bits("010110101001"))


@pytest.mark.parametrize("word", [w for w in range(64) if w not in CODE_3OF6])
def test_3of6_non_code_words_are_counted(word):
    bad = _bits(format(word, "06b"))
    good = encode_3of6(b"\x5a")[:6]  # a valid high-nibble word
    data, n_invalid = decode_3of6(np.concatenate([good, bad]))
    assert n_invalid == 1
    assert data == bytes([0x50])  # the invalid nibble decodes to 0


@FAST
@given(st.binary(min_size=1, max_size=40), st.data())
def test_3of6_any_single_chip_flip_is_an_invalid_symbol(data, draw):
    # All code words weigh 3; one flipped chip gives weight 2 or 4, never a code word.
    chips = encode_3of6(data)
    pos = draw.draw(st.integers(0, chips.size - 1))
    chips[pos] ^= 1
    assert decode_3of6(chips)[1] == 1


def test_manchester_convention():
    # Reference 1.4: "01" = logical 1, "10" = logical 0.
    np.testing.assert_array_equal(encode_manchester([1, 0, 1, 1]), _bits("01100101"))
    bits, n_invalid = decode_manchester(_bits("0110"))
    np.testing.assert_array_equal(bits, [1, 0])
    assert n_invalid == 0


def test_manchester_invalid_pairs_counted():
    bits, n_invalid = decode_manchester(_bits("01001110"))
    assert n_invalid == 2
    np.testing.assert_array_equal(
        bits, [1, 0, 1, 0]
    )  # invalid pairs give their 2nd chip


def test_bytes_to_bits_is_msb_first():
    np.testing.assert_array_equal(bytes_to_bits(b"\x12\x80"), _bits("0001001010000000"))
    assert bits_to_bytes(_bits("0001001010000000")) == b"\x12\x80"
    assert bytes_to_bits(b"").size == 0
    assert bits_to_bytes(np.zeros(0, dtype=np.uint8)) == b""


@FAST
@given(st.binary(max_size=64))
def test_round_trips(data):
    assert bits_to_bytes(bytes_to_bits(data)) == data
    assert decode_3of6(encode_3of6(data)) == (data, 0)
    bits, n_invalid = decode_manchester(encode_manchester(bytes_to_bits(data)))
    assert (bits_to_bytes(bits), n_invalid) == (data, 0)
    for code in ("manchester", "3of6", "nrz"):
        chips = encode_line(data, code)
        assert chips.size == {"manchester": 16, "3of6": 12, "nrz": 8}[code] * len(data)
        assert decode_line(chips, code) == (data, 0)


@FAST
@given(st.lists(st.integers(0, 1), max_size=50))
def test_nrz_is_identity(bits):
    np.testing.assert_array_equal(encode_nrz(bits), bits)
    out, n_invalid = decode_nrz(bits)
    np.testing.assert_array_equal(out, bits)
    assert n_invalid == 0


@pytest.mark.parametrize(
    ("func", "arg"),
    [
        (bits_to_bytes, np.ones(7, dtype=np.uint8)),
        (bits_to_bytes, np.array([0, 1, 2, 0, 0, 0, 0, 0])),
        (bits_to_bytes, np.zeros((2, 8), dtype=np.uint8)),
        (bits_to_bytes, np.zeros(8, dtype=np.float32)),
        (decode_manchester, np.ones(3, dtype=np.uint8)),
        (decode_3of6, np.ones(18, dtype=np.uint8)),
        (decode_3of6, -np.ones(12, dtype=np.int8)),
        (encode_manchester, [0, 3]),
    ],
)
def test_misuse_raises_value_error(func, arg):
    with pytest.raises(ValueError):
        func(arg)


def test_unknown_line_code():
    with pytest.raises(ValueError, match="line code"):
        encode_line(b"\x00", "4b5b")
    with pytest.raises(ValueError, match="line code"):
        decode_line(np.zeros(8, dtype=np.uint8), "4b5b")
