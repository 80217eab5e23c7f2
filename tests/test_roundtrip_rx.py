"""Round trips through our transmitter and channel model into the receiver.

Every PHY (S long and short preamble, T1, C1 frame A and B, T2 and C2 downlinks) at
1.2, 1.6, 2.0 and 2.4 MS/s, and at 0.5 and 1.0 MS/s tuned near its channel, with
white noise at a moderate Eb/N0, carrier offsets of +-60 kHz, a chip-rate error of
+-2 % and a sample-clock error of +-100 ppm; every PHY across the chip-rate errors the
receiver looks for (T and C +-12 %, the others +-6 %), including rates between its
hypotheses; and the 868.625 MHz centre at 1.6 MS/s that holds S and T/C at once.
Telegrams are made up (``tests.helpers_tx.build_telegram``); success is the exact
on-air bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from dsp.impair import add_awgn, apply_clock_offset
from dsp.modes import get_phy
from dsp.modulator import compose, frame_burst
from dsp.receiver import Receiver
from stack.frame import add_crcs
from tests.helpers_tx import build_telegram

EBN0_DB = 14.0
RATES_HZ = [1.2e6, 1.6e6, 2.0e6, 2.4e6, 0.5e6, 1.0e6]
# name: (mode, direction, frame format, receiver phy)
PHYS = {
    "S1": ("S1", "meter", "A", "S"),
    "S1-m": ("S1-m", "meter", "A", "S"),
    "T1": ("T1", "meter", "A", "T"),
    "C1-A": ("C1", "meter", "A", "C"),
    "C1-B": ("C1", "meter", "B", "C"),
    "T2-down": ("T2", "other", "A", "S"),
    "C2-down-A": ("C2", "other", "A", "C2"),
    "C2-down-B": ("C2", "other", "B", "C2"),
}


@dataclass(frozen=True)
class Tx:
    """One telegram to send: mode, format, its carrier and chip-clock errors."""

    telegram: bytes
    mode: str
    direction: str
    frame_format: str
    cfo_hz: float = 0.0
    chip_ppm: float = 0.0

    @property
    def frame(self) -> bytes:
        return add_crcs(self.telegram, self.frame_format)


def synthesize(
    txs, sample_rate_hz, center_freq_hz, ebn0_db, clock_ppm=0.0, seed=0, gap_s=0.003
):
    """Bursts one after another, then the receiver's clock error, then noise.

    The fastest mode's bursts have unit power and the others are scaled to the same
    energy per bit, so every telegram sees ``ebn0_db``.
    """
    rates = [get_phy(tx.mode, tx.direction).bit_rate_bps for tx in txs]
    bursts, pos = [], int(gap_s * sample_rate_hz)
    for tx, rate in zip(txs, rates, strict=True):
        burst = frame_burst(
            tx.frame,
            tx.mode,
            tx.direction,
            tx.frame_format,
            sample_rate_hz=sample_rate_hz,
            start_sample=pos,
            carrier_offset_hz=tx.cfo_hz,
            chip_rate_error_ppm=tx.chip_ppm,
            gain_db=10 * np.log10(rate / max(rates)),
        )
        bursts.append(burst)
        pos = burst.stop_sample + int(gap_s * sample_rate_hz)
    iq = compose(bursts, center_freq_hz, sample_rate_hz, pos)
    if clock_ppm:
        iq = apply_clock_offset(iq, clock_ppm)
    return add_awgn(
        iq,
        ebn0_db,
        max(rates),
        sample_rate_hz,
        np.random.default_rng(seed),
        signal_power=1.0,
    )


def centre_for(carrier_hz: float, sample_rate_hz: float) -> float:
    """868.95 MHz when the channel fits (the usual tuning), else 868.625 MHz, else
    beside the channel (up to 325 kHz, away from the tuner's DC) as far as it fits."""
    for centre in (868.95e6, 868.625e6):
        if abs(carrier_hz - centre) + 180e3 <= sample_rate_hz / 2:
            return centre
    return carrier_hz + min(325e3, sample_rate_hz / 2 - 180e3)


def receive(iq, sample_rate_hz, center_freq_hz, block=1 << 16):
    rx = Receiver(sample_rate_hz, center_freq_hz)
    frames = []
    for lo in range(0, iq.size, block):
        frames += rx.feed(iq[lo : lo + block])
    return frames + rx.flush()


@pytest.mark.parametrize("rate_index, sample_rate_hz", list(enumerate(RATES_HZ)))
@pytest.mark.parametrize("name", sorted(PHYS))
def test_round_trip_with_impairments(name, rate_index, sample_rate_hz):
    mode, direction, fmt, phy = PHYS[name]
    seed = 10 * rate_index + sorted(PHYS).index(name)
    txs = [
        Tx(
            build_telegram("RTX", f"{seed:04d}{k:04d}", 36 + 11 * k, seed=seed + k),
            mode,
            direction,
            fmt,
            cfo_hz=sign * 60e3,
            chip_ppm=sign * 2e4,
        )
        for k, sign in enumerate((1, -1))
    ]
    clock_ppm = 100.0 if rate_index % 2 else -100.0
    centre = centre_for(get_phy(mode, direction).carrier_hz, sample_rate_hz)
    iq = synthesize(txs, sample_rate_hz, centre, EBN0_DB, clock_ppm, seed)
    frames = receive(iq, sample_rate_hz, centre)
    assert [f.data for f in frames] == [tx.frame for tx in txs]
    for frame, tx in zip(frames, txs, strict=True):
        assert (frame.phy, frame.frame_format, frame.crc_ok) == (phy, fmt, True)
        # the receiver's clock error shifts every carrier by ~ -ppm * 868 MHz... of
        # the baseband only: ppm of the offset from the centre, under 100 Hz here
        assert frame.freq_offset_hz == pytest.approx(tx.cfo_hz, abs=3e3)


# Chip-rate errors per PHY: the ends of the range the detector covers and points
# between its hypotheses (3 % apart), where the chip clock does the most work.
CHIP_ERRORS = {"S": (-0.06, -0.045, 0.035, 0.06), "C2": (-0.06, -0.045, 0.035, 0.06)}
CHIP_ERRORS["T"] = CHIP_ERRORS["C"] = (-0.12, -0.075, -0.045, 0.015, 0.105, 0.12)


@pytest.mark.parametrize("name", sorted(PHYS))
def test_round_trip_across_meter_chip_rate_errors(name):
    mode, direction, fmt, phy = PHYS[name]
    fs = 1.6e6
    seed = 200 + sorted(PHYS).index(name)
    errors = CHIP_ERRORS[phy]
    txs = [
        Tx(
            build_telegram("CLK", f"{seed:04d}{k:04d}", 40, seed=seed + k),
            mode,
            direction,
            fmt,
            cfo_hz=(-1) ** k * 25e3,
            chip_ppm=err * 1e6,
        )
        for k, err in enumerate(errors)
    ]
    centre = centre_for(get_phy(mode, direction).carrier_hz, fs)
    iq = synthesize(txs, fs, centre, EBN0_DB, clock_ppm=50.0, seed=seed)
    frames = receive(iq, fs, centre)
    assert [f.data for f in frames] == [tx.frame for tx in txs]
    assert all(f.phy == phy and f.crc_ok for f in frames)


def test_three_modes_at_868_625_mhz_and_1_6_msps():
    """S at -325 kHz and T/C at +325 kHz in one capture, each with its offsets."""
    fs, fc = 1.6e6, 868.625e6
    txs = [
        Tx(
            build_telegram("MIX", f"0000000{k}", 40 + 5 * k, seed=50 + k),
            mode,
            "meter",
            fmt,
            cfo_hz=cfo,
            chip_ppm=ppm,
        )
        for k, (mode, fmt, cfo, ppm) in enumerate(
            [
                ("S1-m", "A", 45e3, 1e4),
                ("T1", "A", -60e3, -2e4),
                ("C1", "B", 30e3, 2e4),
                ("S1", "A", -60e3, -1e4),
            ]
        )
    ]
    iq = synthesize(txs, fs, fc, EBN0_DB, clock_ppm=100.0, seed=3)
    frames = receive(iq, fs, fc, block=4096)
    assert [f.data for f in frames] == [tx.frame for tx in txs]
    assert [f.phy for f in frames] == ["S", "T", "C", "S"]
    assert [f.channel_hz for f in frames] == [868.3e6, 868.95e6, 868.95e6, 868.3e6]


def test_simultaneous_telegrams_on_three_channels():
    """S1-m, T1 and the C2 downlink on air at once (2.4 MS/s at 868.95 MHz)."""
    fs, fc = 2.4e6, 868.95e6
    txs = [
        Tx(
            build_telegram("SIM", f"0000000{k}", 30, seed=70 + k),
            mode,
            direction,
            "A",
            cfo_hz=cfo,
        )
        for k, (mode, direction, cfo) in enumerate(
            [("S1-m", "meter", 10e3), ("T1", "meter", -20e3), ("C2", "other", 5e3)]
        )
    ]
    bursts = [
        frame_burst(
            tx.frame,
            tx.mode,
            tx.direction,
            "A",
            sample_rate_hz=fs,
            start_sample=3000 + 500 * k,
            carrier_offset_hz=tx.cfo_hz,
        )
        for k, tx in enumerate(txs)
    ]
    iq = compose(bursts, fc, fs, max(b.stop_sample for b in bursts) + 3000)
    iq = add_awgn(iq, 16.0, 16384.0, fs, np.random.default_rng(4), signal_power=1.0)
    frames = receive(iq, fs, fc)
    assert sorted(f.data for f in frames) == sorted(tx.frame for tx in txs)
    assert sorted(f.phy for f in frames) == ["C2", "S", "T"]
