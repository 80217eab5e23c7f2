"""Raw IQ formats <-> complex64: hand-computed codes, round trips, clipping, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dsp.convert import (
    SAMPLE_FORMATS,
    bytes_per_sample,
    bytes_to_iq,
    iq_to_bytes,
    remove_dc,
)

# Full-scale code magnitude per format (the value of 1.0), from the module's table.
SCALE = {"cu8": 127.5, "cs8": 128.0, "cs16": 32768.0}


def test_bytes_per_sample_table():
    assert [bytes_per_sample(f) for f in SAMPLE_FORMATS] == [2, 2, 4, 8]


@pytest.mark.parametrize(
    "fmt, raw, expected",
    [
        # cu8: (code - 127.5) / 127.5, so 0 -> -1, 255 -> +1, 127/128 -> -+1/255.
        ("cu8", bytes([0, 255]), [-1.0 + 1.0j]),
        ("cu8", bytes([127, 128]), [-1 / 255 + 1j / 255]),
        # cs8: code / 128; 0x80 = -128 -> -1, 0x7f = 127 -> 127/128, 0x40 = 64 -> 0.5.
        ("cs8", bytes([0x80, 0x7F]), [-1.0 + 1j * 127 / 128]),
        ("cs8", bytes([0x40, 0x00]), [0.5 + 0j]),
        # cs16 little-endian: 00 80 = -32768 -> -1, ff 7f = 32767, 00 40 = 16384 -> 0.5.
        ("cs16", bytes([0x00, 0x80, 0xFF, 0x7F]), [-1.0 + 1j * 32767 / 32768]),
        ("cs16", bytes([0x00, 0x40, 0x00, 0xC0]), [0.5 - 0.5j]),
        # cf32 little-endian: 0x3f800000 = 1.0, 0xbf000000 = -0.5.
        ("cf32", bytes([0, 0, 0x80, 0x3F, 0, 0, 0, 0xBF]), [1.0 - 0.5j]),
    ],
)
def test_known_codes(fmt, raw, expected):
    iq = bytes_to_iq(raw, fmt)
    assert iq.dtype == np.complex64
    np.testing.assert_allclose(
        iq, np.array(expected, dtype=np.complex64), rtol=0, atol=1e-7
    )


def test_cu8_end_codes_are_exact():
    iq = bytes_to_iq(bytes([0, 255, 255, 0]), "cu8")
    assert iq.tolist() == [-1 + 1j, 1 - 1j]


@pytest.mark.parametrize(
    "fmt, iq, expected",
    [
        ("cu8", [-1 + 1j, 0j], bytes([0, 255, 128, 128])),  # 127.5 rounds half to even
        ("cs8", [0.5 - 1j], bytes([64, 0x80])),
        ("cs16", [0.5 - 0.5j], bytes([0x00, 0x40, 0x00, 0xC0])),
        ("cf32", [1.0 - 0.5j], bytes([0, 0, 0x80, 0x3F, 0, 0, 0, 0xBF])),
    ],
)
def test_known_encodings(fmt, iq, expected):
    assert iq_to_bytes(np.array(iq, dtype=np.complex64), fmt) == expected


@pytest.mark.parametrize("fmt", ["cu8", "cs8", "cs16"])
def test_clipping_at_full_scale(fmt):
    big = np.array([3.0 - 7.0j, 1.5 + 0j], dtype=np.complex64)
    back = bytes_to_iq(iq_to_bytes(big, fmt), fmt)
    top = 1.0 if fmt == "cu8" else (SCALE[fmt] - 1) / SCALE[fmt]
    np.testing.assert_allclose(back.real, [top, top], atol=1e-7)
    np.testing.assert_allclose(back.imag, [-1.0, 0.0], atol=1 / SCALE[fmt])


@settings(max_examples=60, deadline=None)
@given(fmt=st.sampled_from(SAMPLE_FORMATS), data=st.data())
def test_bytes_round_trip_exact(fmt, data):
    """Every byte string survives bytes -> iq -> bytes unchanged (cf32 NaNs too)."""
    n = data.draw(st.integers(0, 64)) * bytes_per_sample(fmt)
    raw = data.draw(st.binary(min_size=n, max_size=n))
    if fmt == "cf32":
        # cf32 passes bits through untouched, NaN payloads included.
        assert bytes_to_iq(raw, fmt).tobytes() == raw
    else:
        assert iq_to_bytes(bytes_to_iq(raw, fmt), fmt) == raw


_COMPONENT = st.floats(-1.0, 1.0, width=32)


@settings(max_examples=60, deadline=None)
@given(
    fmt=st.sampled_from(["cu8", "cs8", "cs16"]),
    parts=st.lists(st.tuples(_COMPONENT, _COMPONENT), max_size=50),
)
def test_iq_round_trip_within_half_a_code(fmt, parts):
    iq = np.array([complex(a, b) for a, b in parts], dtype=np.complex64)
    back = bytes_to_iq(iq_to_bytes(iq, fmt), fmt)
    scale = SCALE[fmt]
    # Half a code, except at +1.0 where the signed formats clip one code lower.
    limit = 0.5 / scale + 1e-6 if fmt == "cu8" else 1.0 / scale + 1e-6
    assert back.shape == iq.shape
    assert np.all(np.abs(back.real - iq.real) <= limit)
    assert np.all(np.abs(back.imag - iq.imag) <= limit)


def test_result_is_writable_and_not_a_view():
    buf = bytearray(iq_to_bytes(np.ones(4, dtype=np.complex64), "cf32"))
    from_bytes = bytes_to_iq(bytes(buf), "cf32")
    from_bytes[0] = 0  # a read-only frombuffer view would raise here
    assert bytes_to_iq(np.frombuffer(bytes(buf), np.uint8), "cs16").flags.writeable


def test_unknown_format_lists_valid_ones():
    with pytest.raises(ValueError, match="cu8, cs8, cs16, cf32"):
        bytes_to_iq(b"\x00\x00", "cu16")
    with pytest.raises(ValueError, match="valid formats"):
        iq_to_bytes(np.zeros(1, np.complex64), "wav")
    with pytest.raises(ValueError):
        bytes_per_sample("CU8")


@pytest.mark.parametrize("fmt, n_bytes", [("cu8", 3), ("cs16", 6), ("cf32", 4)])
def test_partial_sample_is_refused(fmt, n_bytes):
    with pytest.raises(ValueError, match="whole number"):
        bytes_to_iq(bytes(n_bytes), fmt)


@pytest.mark.parametrize("fmt", ["cu8", "cs8", "cs16"])
def test_non_finite_cannot_be_encoded(fmt):
    with pytest.raises(ValueError, match="NaN"):
        iq_to_bytes(np.array([np.nan + 0j], dtype=np.complex64), fmt)
    with pytest.raises(ValueError, match="NaN"):
        iq_to_bytes(np.array([1j * np.inf], dtype=np.complex64), fmt)


def test_bad_iq_shapes_and_types():
    with pytest.raises(ValueError, match="1-D"):
        iq_to_bytes(np.zeros((2, 2), np.complex64), "cf32")
    with pytest.raises(ValueError, match="complex"):
        iq_to_bytes(np.ones(3, np.float32), "cu8")
    with pytest.raises(ValueError, match="uint8"):
        bytes_to_iq(np.zeros(4, np.int16), "cu8")


def test_empty_input():
    assert bytes_to_iq(b"", "cs16").shape == (0,)
    assert iq_to_bytes(np.zeros(0, np.complex64), "cu8") == b""


def test_remove_dc(rng):
    tone = np.exp(2j * np.pi * 0.01 * np.arange(1000)).astype(
        np.complex64
    )  # 10 periods
    offset = np.complex64(0.2 - 0.1j)
    out = remove_dc(tone + offset)
    assert out.dtype == np.complex64
    np.testing.assert_allclose(out, tone, atol=1e-5)
    np.testing.assert_allclose(remove_dc(tone, dc=0.5), tone - 0.5, atol=1e-7)
    assert remove_dc(np.zeros(0, np.complex64)).size == 0
    noise = rng.normal(size=64) + 1j * rng.normal(size=64)
    assert abs(remove_dc(noise).mean()) < 1e-6
