"""``sdr.transmit.render``: each telegram lands where its annotation says.

The judge here is a tiny receiver written in this file from the reference alone
(../shared/docs/wmbus-reference.md sections 1.1-1.5), sharing no code with ``dsp``:
mix the annotated span down by (carrier - centre), take the phase difference of
neighbouring samples as the instantaneous frequency, average it over the middle half
of each chip (chip k lasts [k, k+1) / chip rate from the first annotated sample), call
a chip 1 when the frequency is above the carrier (TI SWRA234: "1" = +deviation; the
rtl_433 oracle confirms the polarity), find the sync word behind the "01" preamble,
and undo the line code (NRZ, 3-of-6 by the table of section 1.5, Manchester "01" = 1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from sdr.transmit import TransmitError, TxFrame, check_telegram_hex, render
from stack.crc import crc16
from stack.errors import WmbusError
from stack.frame import add_crcs
from tests.helpers_tx import build_telegram

RATE_HZ = 2_400_000.0
CENTER_HZ = 868_950_000.0

# Reference 1.1: carrier, chip rate and nominal deviation per mode and direction.
S_HZ, TC_HZ, C2_DOWN_HZ = 868.30e6, 868.95e6, 869.525e6


@dataclass(frozen=True)
class PhyFacts:
    """What the reference says about one mode's physical layer (section 1)."""

    carrier_hz: float
    chip_rate_hz: float
    deviation_hz: float
    line_code: str  # "nrz", "3of6", "manchester"
    sync: str  # chips after the "01" preamble (reference 1.3), C: with frame marker
    min_pairs: int  # minimum preamble "01" pairs before the sync
    info_bits_per_chip: float


_S_SYNC = "000111011010010110"
_T_SYNC = "0000111101"
_C_SYNC = "0101010000111101"
_C_MARK = {"A": "0101010011001101", "B": "0101010000111101"}


def phy_facts(mode: str, direction: str = "meter", frame_format: str = "A") -> PhyFacts:
    """Reference table 1.1 / 1.3, typed in from the document."""
    if mode == "S1":
        return PhyFacts(S_HZ, 32_768.0, 50e3, "manchester", _S_SYNC, 279, 0.5)
    if mode in ("S1-m", "S2") or (mode == "T2" and direction == "other"):
        return PhyFacts(S_HZ, 32_768.0, 50e3, "manchester", _S_SYNC, 15, 0.5)
    if mode in ("T1", "T2"):
        return PhyFacts(TC_HZ, 100e3, 50e3, "3of6", _T_SYNC, 19, 4 / 6)
    sync = _C_SYNC + _C_MARK[frame_format]
    if direction == "other":  # C2 other->meter
        return PhyFacts(C2_DOWN_HZ, 50e3, 25e3, "nrz", sync, 16, 1.0)
    return PhyFacts(TC_HZ, 100e3, 45e3, "nrz", sync, 16, 1.0)


# Reference 1.5: 3-of-6 code word -> nibble.
_FROM_3OF6 = {
    0b010110: 0x0,
    0b001101: 0x1,
    0b001110: 0x2,
    0b001011: 0x3,
    0b011100: 0x4,
    0b011001: 0x5,
    0b011010: 0x6,
    0b010011: 0x7,
    0b101100: 0x8,
    0b100101: 0x9,
    0b100110: 0xA,
    0b100011: 0xB,
    0b110100: 0xC,
    0b110001: 0xD,
    0b110010: 0xE,
    0b101001: 0xF,
}


_LOWPASS_TAPS = 33  # Hamming-windowed sinc: about 3.3 / 33 of the rate wide


def _lowpass(seg: np.ndarray, cutoff_hz: float, sample_rate_hz: float) -> np.ndarray:
    """Keep +-cutoff_hz (so a burst on another channel at the same time drops out)."""
    half = _LOWPASS_TAPS // 2
    n = np.arange(-half, half + 1)
    taps = 2 * cutoff_hz / sample_rate_hz * np.sinc(2 * cutoff_hz / sample_rate_hz * n)
    taps *= np.hamming(_LOWPASS_TAPS)
    return np.convolve(seg, taps / taps.sum(), mode="same")


def chip_freqs(
    iq: np.ndarray,
    start: int,
    count: int,
    offset_hz: float,
    chip_rate_hz: float,
    sample_rate_hz: float,
    cutoff_hz: float | None = None,
) -> np.ndarray:
    """Mean instantaneous frequency (Hz, relative to ``offset_hz``) of each chip.

    With ``cutoff_hz``, a low-pass filter after the mix-down selects the channel.
    """
    seg = iq[start : start + count].astype(np.complex128)
    seg = seg * np.exp(-2j * np.pi * offset_hz * np.arange(seg.size) / sample_rate_hz)
    if cutoff_hz is not None:
        seg = _lowpass(seg, cutoff_hz, sample_rate_hz)
    freq = np.angle(seg[1:] * np.conj(seg[:-1])) * sample_rate_hz / (2 * np.pi)
    sps = sample_rate_hz / chip_rate_hz
    n_chips = int((seg.size - 1) / sps)
    # freq[i] belongs to the instant i + 1/2: keep the middle half of each chip.
    lows = np.ceil((np.arange(n_chips) + 0.25) * sps).astype(int)
    highs = np.floor((np.arange(n_chips) + 0.75) * sps).astype(int)
    sums = np.concatenate([[0.0], np.cumsum(freq)])
    return (sums[highs] - sums[lows]) / (highs - lows)


def _undo_line_code(chips: str, line_code: str, n_bytes: int) -> bytes:
    if line_code == "nrz":
        return bytes(int(chips[8 * i : 8 * i + 8], 2) for i in range(n_bytes))
    if line_code == "manchester":
        pairs = [chips[i : i + 2] for i in range(0, 16 * n_bytes, 2)]
        bits = "".join({"01": "1", "10": "0"}.get(p, "x") for p in pairs)
        assert "x" not in bits, "a Manchester pair 00/11 inside the frame"
        return bytes(int(bits[8 * i : 8 * i + 8], 2) for i in range(n_bytes))
    words = [int(chips[i : i + 6], 2) for i in range(0, 12 * n_bytes, 6)]
    nibbles = [_FROM_3OF6[w] for w in words]  # KeyError = not a 3-of-6 code word
    pairs = zip(nibbles[::2], nibbles[1::2], strict=True)
    return bytes(16 * hi + lo for hi, lo in pairs)


@dataclass(frozen=True)
class Heard:
    """What the test receiver found in one annotated span."""

    frame: bytes
    preamble_pairs: int
    carrier_error_hz: float  # preamble mean frequency minus the expected carrier
    deviation_hz: float  # mean |frequency| over the preamble (no other burst there)


def demodulate(
    iq: np.ndarray,
    start: int,
    count: int,
    facts: PhyFacts,
    n_bytes: int,
    *,
    center_freq_hz: float,
    sample_rate_hz: float,
    extra_offset_hz: float = 0.0,
) -> Heard:
    """Receive ``n_bytes`` frame bytes from the span ``start`` .. ``start + count``."""
    offset_hz = facts.carrier_hz - center_freq_hz + extra_offset_hz
    freqs = chip_freqs(
        iq,
        start,
        count,
        offset_hz,
        facts.chip_rate_hz,
        sample_rate_hz,
        cutoff_hz=facts.deviation_hz + facts.chip_rate_hz,
    )
    chips = "".join("1" if f > 0 else "0" for f in freqs)
    at = chips.find(facts.sync)
    assert at >= 0, f"no sync word {facts.sync} in {chips[:80]}..."
    assert chips[:at] == "01" * (at // 2), "the burst does not open with 01 pairs"
    # Carrier and deviation from the unfiltered frequency (the filter rings a little).
    raw = chip_freqs(iq, start, count, offset_hz, facts.chip_rate_hz, sample_rate_hz)
    preamble = raw[: 2 * facts.min_pairs]
    per_byte = {"nrz": 8, "manchester": 16, "3of6": 12}[facts.line_code]
    data = chips[at + len(facts.sync) : at + len(facts.sync) + per_byte * n_bytes]
    assert len(data) == per_byte * n_bytes, "the burst ends inside the frame"
    return Heard(
        frame=_undo_line_code(data, facts.line_code, n_bytes),
        preamble_pairs=at // 2,
        carrier_error_hz=float(np.mean(preamble)),
        deviation_hz=float(np.mean(np.abs(preamble))),
    )


def _telegram(meter_id: str, length: int, seed: int) -> bytes:
    return build_telegram(
        "QRS",
        meter_id,
        length,
        access_no=seed,
        volume_l=seed * 11,
        flow_temp_dc=seed,
        seed=seed,
    )


# (mode, direction, frame format, telegram length, carrier offset Hz, gain dB)
MIXED = [
    ("S1", "meter", "A", 30, 20e3, 0.0),
    ("T1", "meter", "A", 41, -25e3, -3.0),
    ("C1", "meter", "A", 60, 12e3, 0.0),
    ("C1", "meter", "B", 140, -18e3, -6.0),
    ("S1-m", "meter", "A", 27, 0.0, 0.0),
    ("T2", "other", "A", 35, 30e3, 0.0),
    ("C2", "other", "A", 44, -10e3, 0.0),
    ("T1", "meter", "A", 256, 0.0, 0.0),  # the longest telegram: L = 255
]


@pytest.fixture(scope="module")
def mixed():
    frames = [
        TxFrame(
            _telegram(f"{31000000 + i:08d}", length, i + 1),
            mode,
            fmt,
            direction,
            carrier_offset_hz=offset,
            gain_db=gain,
        )
        for i, (mode, direction, fmt, length, offset, gain) in enumerate(MIXED)
    ]
    iq, annotations = render(
        frames,
        sample_rate_hz=RATE_HZ,
        center_freq_hz=CENTER_HZ,
        gap_s=0.002,
        lead_s=0.003,
        tail_s=0.004,
    )
    return frames, iq, annotations


@pytest.mark.parametrize(
    "index", range(len(MIXED)), ids=[f"{m[0]}-{m[1]}-{m[2]}-L{m[3]}" for m in MIXED]
)
def test_each_telegram_is_received_from_its_annotated_span(mixed, index):
    frames, iq, annotations = mixed
    frame, note = frames[index], annotations[index]
    facts = phy_facts(frame.mode, frame.direction, frame.frame_format)
    on_air = add_crcs(frame.telegram, frame.frame_format)
    heard = demodulate(
        iq,
        note.sample_start,
        note.sample_count,
        facts,
        len(on_air),
        center_freq_hz=CENTER_HZ,
        sample_rate_hz=RATE_HZ,
        extra_offset_hz=frame.carrier_offset_hz,
    )
    assert heard.frame == on_air
    if frame.frame_format == "A":
        # Block 1's CRC as the reference computes it (section 2.4), high byte first.
        assert int.from_bytes(heard.frame[10:12], "big") == crc16(heard.frame[:10])
    assert heard.preamble_pairs >= facts.min_pairs
    assert abs(heard.carrier_error_hz) < 0.01 * facts.deviation_hz
    if frame.mode == "C2" and frame.direction == "other":
        # GFSK (reference 1.1): the Gaussian filter rounds off the 0101 preamble.
        assert 0.6 * facts.deviation_hz < heard.deviation_hz < facts.deviation_hz
    else:
        assert heard.deviation_hz == pytest.approx(facts.deviation_hz, rel=0.03)
    # The annotation tells the truth about the telegram.
    assert note.mode == frame.mode and note.frame_format == frame.frame_format
    assert note.telegram_hex == frame.telegram.hex()
    assert note.frame_hex == on_air.hex()
    assert note.carrier_hz == facts.carrier_hz + frame.carrier_offset_hz
    assert note.freq_lower_edge_hz < note.carrier_hz < note.freq_upper_edge_hz
    assert note.extra["wmbus:direction"] == frame.direction


def test_bursts_fill_their_spans_and_nothing_else(mixed):
    frames, iq, annotations = mixed
    lead, gap = round(0.003 * RATE_HZ), round(0.002 * RATE_HZ)
    tail = round(0.004 * RATE_HZ)
    assert annotations[0].sample_start == lead
    for before, after in zip(annotations, annotations[1:], strict=False):
        assert after.sample_start == before.sample_start + before.sample_count + gap
    last = annotations[-1]
    assert iq.size == last.sample_start + last.sample_count + tail
    assert iq.dtype == np.complex64
    on_air = np.zeros(iq.size, bool)
    for frame, note in zip(frames, annotations, strict=True):
        span = slice(note.sample_start, note.sample_start + note.sample_count)
        on_air[span] = True
        # 2-FSK has a constant envelope: the amplitude is the telegram's gain.
        np.testing.assert_allclose(
            np.abs(iq[span]), 10 ** (frame.gain_db / 20), rtol=1e-5
        )
    assert not np.any(iq[~on_air])


@pytest.mark.parametrize(
    ("mode", "direction", "center_hz", "rate_hz", "expected_hz"),
    [
        ("S1", "meter", 868.95e6, 2.4e6, -650e3),  # reference 1.1: S at 868.30 MHz
        ("T1", "meter", 868.95e6, 2.4e6, 0.0),
        ("C1", "meter", 868.95e6, 2.4e6, 0.0),
        ("T2", "other", 868.95e6, 2.4e6, -650e3),  # T2 downlink on the S channel
        ("C2", "other", 868.95e6, 2.4e6, 575e3),  # C2 downlink at 869.525 MHz
        ("S1-m", "meter", 868.625e6, 1.6e6, -325e3),  # RWM's all-channel centre
        ("C1", "meter", 868.625e6, 1.6e6, 325e3),
        ("S1", "meter", 868.30e6, 1.0e6, 0.0),
    ],
)
def test_carrier_relative_to_the_centre(
    mode, direction, center_hz, rate_hz, expected_hz
):
    iq, (note,) = render(
        [TxFrame(_telegram("12340001", 26, 3), mode, "A", direction)],
        sample_rate_hz=rate_hz,
        center_freq_hz=center_hz,
    )
    facts = phy_facts(mode, direction)
    assert facts.carrier_hz - center_hz == pytest.approx(expected_hz)
    # Measured without the expected carrier: the preamble's mean frequency is it.
    freqs = chip_freqs(
        iq, note.sample_start, note.sample_count, 0.0, facts.chip_rate_hz, rate_hz
    )
    assert float(np.mean(freqs[: 2 * facts.min_pairs])) == pytest.approx(
        expected_hz, abs=200.0
    )


def test_gap_of_one_frame_overrides_and_a_negative_gap_overlaps():
    tel = _telegram("12340002", 30, 4)
    frames = [
        TxFrame(tel, "S1"),
        TxFrame(tel, "T1", gap_s=-0.02),
        TxFrame(tel, "C1", gap_s=0.001),
    ]
    iq, notes = render(
        frames,
        sample_rate_hz=RATE_HZ,
        center_freq_hz=CENTER_HZ,
        gap_s=0.5,
        lead_s=0.0,
        tail_s=0.001,
    )
    assert notes[0].sample_start == 0
    assert notes[1].sample_start == notes[0].sample_count - round(0.02 * RATE_HZ)
    assert notes[2].sample_start == (
        notes[1].sample_start + notes[1].sample_count + round(0.001 * RATE_HZ)
    )
    # The long S1 burst ends last; the baseband still holds all of it, then the tail.
    s1_end = notes[0].sample_start + notes[0].sample_count
    assert s1_end > notes[2].sample_start + notes[2].sample_count
    assert iq.size == s1_end + round(0.001 * RATE_HZ)
    # Overlapping in time on different channels, both still come through.
    for frame, note in zip(frames, notes, strict=True):
        facts = phy_facts(frame.mode)
        on_air = add_crcs(tel, "A")
        heard = demodulate(
            iq,
            note.sample_start,
            note.sample_count,
            facts,
            len(on_air),
            center_freq_hz=CENTER_HZ,
            sample_rate_hz=RATE_HZ,
        )
        assert heard.frame == on_air


# --- channel model: deterministic, and as the docstring defines it -------------------


def _one_t1(**impair):
    tel = _telegram("12340003", 40, 5)
    return render(
        [TxFrame(tel, "T1")], sample_rate_hz=RATE_HZ, center_freq_hz=CENTER_HZ, **impair
    )


def test_same_seed_same_samples_other_seed_other_noise():
    impair = {"ebn0_db": 12.0, "cfo_hz": 7_500.0, "clock_ppm": 40.0}
    first, notes = _one_t1(seed=11, **impair)
    again, notes_again = _one_t1(seed=11, **impair)
    other, _ = _one_t1(seed=12, **impair)
    np.testing.assert_array_equal(first, again)
    assert notes == notes_again
    assert first.shape == other.shape and not np.array_equal(first, other)


def test_noise_power_follows_the_ebn0_definition():
    ebn0_db = 10.0
    clean, notes = _one_t1()
    noisy, _ = _one_t1(ebn0_db=ebn0_db, seed=3)
    # Eb = 1 / bit rate (unit power, T: 100 kcps * 4/6), N0 = variance / sample rate.
    bit_rate = 100e3 * 4 / 6
    variance = RATE_HZ / bit_rate / 10 ** (ebn0_db / 10)
    lead = noisy[: notes[0].sample_start]
    assert np.mean(np.abs(lead) ** 2) == pytest.approx(variance, rel=0.05)
    assert np.mean(lead.real**2) == pytest.approx(variance / 2, rel=0.07)
    noise = noisy.astype(np.complex128) - clean
    assert np.mean(np.abs(noise) ** 2) == pytest.approx(variance, rel=0.03)


def test_cfo_is_a_frequency_shift_of_everything():
    clean, notes = _one_t1()
    shifted, _ = _one_t1(cfo_hz=-31_000.0)
    n = np.arange(clean.size)
    expected = clean * np.exp(2j * np.pi * -31_000.0 * n / RATE_HZ)
    np.testing.assert_allclose(shifted, expected, atol=2e-4)
    on_air = add_crcs(_telegram("12340003", 40, 5), "A")
    heard = demodulate(
        shifted,
        notes[0].sample_start,
        notes[0].sample_count,
        phy_facts("T1"),
        len(on_air),
        center_freq_hz=CENTER_HZ,
        sample_rate_hz=RATE_HZ,
        extra_offset_hz=-31_000.0,
    )
    assert heard.frame == on_air


def test_clock_ppm_stretches_the_baseband():
    ppm = 2000.0
    clean, notes = _one_t1()
    stretched, notes_after = _one_t1(clock_ppm=ppm)
    ratio = 1 + ppm * 1e-6
    assert notes_after == notes  # annotations keep the indices before the offset
    assert stretched.size == math.ceil(clean.size * ratio)
    loud = np.flatnonzero(np.abs(stretched) > 0.5)
    start, stop = notes[0].sample_start, notes[0].sample_start + notes[0].sample_count
    assert abs(loud[0] - start * ratio) <= 2
    assert abs(loud[-1] + 1 - stop * ratio) <= 2


# --- what cannot be sent --------------------------------------------------------------


def _render_one(
    telegram: bytes, mode="T1", frame_format="A", direction="meter", **kwargs
):
    options = {"sample_rate_hz": RATE_HZ, "center_freq_hz": CENTER_HZ, **kwargs}
    return render([TxFrame(telegram, mode, frame_format, direction)], **options)


GOOD = build_telegram("QRS", "76543210", 30)


@pytest.mark.parametrize(
    ("telegram", "mode", "frame_format", "direction", "options", "message"),
    [
        (GOOD[:-1], "T1", "A", "meter", {}, r"L-field 29 but 28 bytes follow"),
        (
            add_crcs(GOOD, "A"),
            "T1",
            "A",
            "meter",
            {},
            r"L-field 29 but 35 bytes follow",
        ),  # the CRCs are still inside
        (GOOD[:9], "T1", "A", "meter", {}, "at least 10 bytes"),
        (b"", "T1", "A", "meter", {}, "at least 10 bytes"),
        (bytes([255]) + bytes(256), "C1", "A", "meter", {}, "at most 256 bytes"),
        (GOOD, "T1", "B", "meter", {}, "frame format 'B' not allowed for mode T1"),
        (GOOD, "S1", "B", "meter", {}, "frame format 'B' not allowed for mode S1"),
        (GOOD, "T1", "A", "other", {}, "mode T1 has no direction 'other'"),
        (GOOD, "C1", "C", "meter", {}, "frame format"),
        (GOOD, "Q1", "A", "meter", {}, "unknown mode 'Q1'"),
        (
            GOOD,
            "S1",
            "A",
            "meter",
            {"center_freq_hz": 869.525e6, "sample_rate_hz": 1.2e6},
            "outside",
        ),
        (
            GOOD,
            "C2",
            "A",
            "other",
            {"center_freq_hz": 868.3e6, "sample_rate_hz": 1.0e6},
            "outside",
        ),
        (GOOD, "T1", "A", "meter", {"sample_rate_hz": 100e3}, "too low"),
        (GOOD, "T1", "A", "meter", {"sample_rate_hz": 0.0}, "must be positive"),
    ],
)
def test_what_cannot_be_sent_is_a_transmit_error(
    telegram, mode, frame_format, direction, options, message
):
    with pytest.raises(TransmitError, match=message) as info:
        _render_one(telegram, mode, frame_format, direction, **options)
    assert isinstance(info.value, WmbusError) and "\n" not in str(info.value)


def test_nothing_to_send():
    with pytest.raises(TransmitError, match="nothing to transmit"):
        render([], sample_rate_hz=RATE_HZ, center_freq_hz=CENTER_HZ)


def test_length_limits_of_frame_formats_a_and_b():
    # Reference 2.2/2.3: L is one byte.  Format A's L leaves the CRCs out, so the
    # no-CRC form may use all 255; format B's L counts them (4 bytes beyond 126
    # bytes), so 252 bytes (L = 251 + 4) is the most a B frame holds.
    def longest(n_bytes: int) -> bytes:
        return build_telegram("QRS", "76543210", n_bytes)

    iq, (note,) = _render_one(longest(256), "C1", "A")
    assert bytes.fromhex(note.frame_hex)[0] == 255
    _, (note,) = _render_one(longest(252), "C1", "B")
    assert bytes.fromhex(note.frame_hex)[0] == 255
    with pytest.raises(TransmitError, match=r"253 bytes do not fit a format-B frame"):
        _render_one(longest(253), "C1", "B")


def test_check_telegram_hex_returns_good_input_unchanged():
    assert check_telegram_hex(GOOD) is GOOD


def test_receiver_front_end_errors_and_meter_chip_error():
    """DC offset and IQ imbalance act on the whole baseband; a meter's chip-clock error
    stretches its own burst by exactly the ppm."""
    from sdr.transmit import TxFrame, render

    telegram = bytes.fromhex("1e442d2c7856341201077a0100000004130300000002fd170000")
    telegram = bytes([len(telegram) - 1]) + telegram[1:]
    common = dict(
        sample_rate_hz=1.6e6, center_freq_hz=868.95e6, lead_s=0.001, tail_s=0.001
    )
    clean, _ = render([TxFrame(telegram, "T1")], **common)
    shifted, _ = render([TxFrame(telegram, "T1")], dc_offset=0.05 - 0.02j, **common)
    np.testing.assert_allclose(shifted - clean, 0.05 - 0.02j, atol=1e-6)
    skewed, _ = render([TxFrame(telegram, "T1")], iq_imbalance=(1.0, 5.0), **common)
    # an IQ-imbalanced tone has an image: the spectrum is no longer one-sided
    assert np.max(np.abs(skewed - clean)) > 0.05
    slow, notes = render(
        [TxFrame(telegram, "T1", chip_rate_error_ppm=-20000.0)], **common
    )
    _, base_notes = render([TxFrame(telegram, "T1")], **common)
    ratio = notes[0].sample_count / base_notes[0].sample_count
    assert abs(ratio - 1 / (1 - 0.02)) < 2e-3
