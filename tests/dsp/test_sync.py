"""Sync search and noise gate: kernels == twins, streaming == whole, detection facts."""

from __future__ import annotations

import numpy as np
import pytest

from dsp.chipfamily import CHIP_FAMILIES
from dsp.modes import get_phy, header_chips
from dsp.modulator import modulate
from dsp.squelch import NoiseGate, gate_reference
from dsp.sync import GRID_PER_CHIP, SyncScanner, scan_reference

RATES = {"S": 533_333.3333333334, "TC": 600_000.0, "C2": 400_000.0}
PHYS = {
    "S": ("S1-m", "meter", "A"),
    "TC": ("T1", "meter", "A"),
    "C2": ("C2", "other", "A"),
}


def _burst(name, rng, cfo_hz=0.0, lead=2000, noise=0.05, n_data=200, seed=0):
    """Noise, then a burst of the family's mode: header + random chips."""
    mode, direction, fmt = PHYS[name]
    phy = get_phy(mode, direction)
    head = header_chips(phy, fmt)
    chips = np.concatenate([head, rng.integers(0, 2, n_data).astype(np.uint8)])
    rate = RATES[name]
    iq = modulate(
        chips,
        phy.chip_rate_hz,
        phy.deviation_hz,
        rate,
        gaussian_bt=phy.gaussian_bt,
        freq_offset_hz=cfo_hz,
    )
    iq = np.concatenate([np.zeros(lead), iq, np.zeros(lead)])
    gen = np.random.default_rng(seed)
    iq = iq + noise * (gen.normal(size=iq.size) + 1j * gen.normal(size=iq.size))
    # the detection pattern ends where the T-length sync ends (the C marker follows)
    fam = CHIP_FAMILIES[name]
    pattern_end = head.size - len(phy.marker_chips(fmt))
    end = lead + pattern_end * rate / phy.chip_rate_hz
    assert (
        "".join(map(str, head[pattern_end - fam.n_pattern : pattern_end]))
        == fam.pattern
    )
    return iq.astype(np.complex64), end


def _scan_whole(name, iq, start=32):
    scanner = SyncScanner(CHIP_FAMILIES[name], RATES[name])
    out = scanner.reset(start)
    out += scanner.scan(iq, 0, iq.size)
    return out + scanner.reset(iq.size), scanner


def test_families_come_from_the_mode_table():
    s, tc, c2 = (CHIP_FAMILIES[k] for k in ("S", "TC", "C2"))
    assert s.pattern.endswith(get_phy("S1").sync_chips)
    assert tc.pattern.endswith(get_phy("T1").sync_chips)
    assert get_phy("C1").sync_chips.endswith(tc.pattern[-10:])
    assert s.pattern == "01" * 8 + get_phy("S1").sync_chips
    assert tc.pattern.startswith("01" * 12) and len(tc.pattern) == len(s.pattern) == 34
    # fewer sync errors than half the sync's distance from the preamble, also with a
    # chip repeated or left out: S's sync is 8 chips from "0101..." but 6 from
    # "01011010..."; T's 4 and 3
    assert (s.max_sync_errors, tc.max_sync_errors, c2.max_sync_errors) == (2, 1, 1)
    # chip-rate hypotheses 3 % apart, nominal first; T meters may be 12 % off
    assert tc.rate_errors[0] == 0.0 and max(tc.rate_errors) == 0.12
    assert sorted(s.rate_errors) == [-0.06, -0.03, 0.0, 0.03, 0.06]


@pytest.mark.parametrize("name", ["S", "TC", "C2"])
@pytest.mark.parametrize("cfo_hz", [-75e3, -31e3, 0.0, 12.5e3, 60e3])
def test_a_burst_is_found_once_at_its_sync(name, cfo_hz, rng):
    iq, end = _burst(name, rng, cfo_hz)
    cands, scanner = _scan_whole(name, iq)
    sps = RATES[name] / CHIP_FAMILIES[name].chip_rate_hz
    near = [c for c in cands if abs(c.end_sample - end) < 2 * sps]
    assert len(near) == 1
    assert near[0].errors == 0
    # the nearest hypothesis, or (GFSK, whose energy spreads) the one beside it
    assert abs(near[0].cfo_hz - cfo_hz) <= scanner.tone_step_hz


@pytest.mark.parametrize("name", ["S", "TC", "C2"])
def test_preamble_alone_never_matches(name):
    fam = CHIP_FAMILIES[name]
    phy = get_phy(*PHYS[name][:2])
    chips = np.tile(np.array([0, 1], dtype=np.uint8), 400)
    iq = modulate(
        chips,
        phy.chip_rate_hz,
        phy.deviation_hz,
        RATES[name],
        gaussian_bt=phy.gaussian_bt,
    ).astype(np.complex64)
    cands, _ = _scan_whole(name, iq)
    assert cands == []
    assert fam.max_errors >= fam.max_sync_errors


@pytest.mark.parametrize("name", ["S", "TC", "C2"])
def test_noise_gives_few_candidates(name):
    gen = np.random.default_rng(3)
    n = int(RATES[name] * 0.5)
    iq = (gen.normal(size=n) + 1j * gen.normal(size=n)).astype(np.complex64)
    cands, _ = _scan_whole(name, iq)
    # 0.5 s of noise is ~1.4e6 tests per chip-rate hypothesis (4 phases x 7 offsets
    # per chip); a match needs <= 1 of 10 sync chips and <= 4 of 34 chips wrong:
    # about 1.5e-6 each, so a few candidates per hypothesis (each then rejected by
    # the header fit) and never a flood
    n_rates = len(CHIP_FAMILIES[name].rate_errors)
    assert len(cands) < 3 * n_rates


@pytest.mark.parametrize("name", ["S", "TC", "C2"])
def test_kernel_matches_reference_and_chunks(name, rng):
    iq, _ = _burst(name, rng, cfo_hz=20e3, noise=0.4, n_data=600)
    scanner = SyncScanner(CHIP_FAMILIES[name], RATES[name])
    scanner.reset(32)
    rows = scanner.scan_matches(iq, 0, iq.size)
    for rate, step in enumerate(scanner.grid_steps):
        first = int(np.ceil(32 / step))
        while np.floor(first * step) < 32:
            first += 1
        ref = scan_reference(iq, 0, scanner, first, rate)
        assert [(g, h, e) for g, h, e, r, _ in rows if r == rate] == ref
    # the burst matches under the nominal rate at least
    assert 0 in {r for *_, r, _ in rows}
    whole, _ = _scan_whole(name, iq)
    # the same scan cut at random places
    chunked = SyncScanner(CHIP_FAMILIES[name], RATES[name])
    out = chunked.reset(32)
    pos = 32
    while pos < iq.size:
        stop = min(iq.size, pos + int(rng.integers(1, 900)))
        lo = max(0, chunked.next_sample() - chunked.history_samples)
        out += chunked.scan(iq[lo:stop], lo, stop)
        pos = stop
    out += chunked.reset(iq.size)
    assert out == whole


def test_scan_checks_its_arguments(rng):
    scanner = SyncScanner(CHIP_FAMILIES["TC"], RATES["TC"])
    scanner.reset(100)
    with pytest.raises(ValueError, match="reach back|before"):
        scanner.scan(np.zeros(50, np.complex64), 100, 150)
    with pytest.raises(ValueError, match="complex64"):
        scanner.scan(np.zeros(200, np.complex128), 0, 200)
    assert scanner.next_sample() >= 100
    assert GRID_PER_CHIP == 4


# -- noise gate ----------------------------------------------------------------------
def _levels(rng, n_blocks, block):
    """Noise whose level steps up for a while (a burst), then back."""
    x = (
        rng.normal(size=n_blocks * block) + 1j * rng.normal(size=n_blocks * block)
    ) * 0.1
    x[200 * block : 260 * block] *= 2.0
    return x.astype(np.complex64)


def test_gate_kernel_matches_reference_in_chunks(rng):
    gate = NoiseGate(600_000.0)
    x = _levels(rng, 400, gate.block_len)
    pos = 0
    while pos < x.size:
        n = gate.block_len * int(rng.integers(0, 30))
        gate.measure(x[pos : pos + n])
        pos += n
    want_open, want_floor = gate_reference(x, gate.block_len)
    got_open = gate.wants_scan(0, 0)  # empty range is fine
    assert got_open.size == 0
    got = np.array([gate.floor(b) for b in range(gate.n_blocks)])
    # the kernel squares float32 components, the twin float64 ones
    np.testing.assert_allclose(got, want_floor, rtol=1e-6)
    opened = np.flatnonzero(want_open)
    # the step opens the gate (from about 200 on) and the floor stays at the noise
    assert opened.min() >= 199 and opened.max() <= 264
    assert np.all(got[260:] < 0.025)


def test_gate_scans_around_open_blocks(rng):
    gate = NoiseGate(600_000.0)
    x = _levels(rng, 400, gate.block_len)
    gate.measure(x)
    wanted = gate.wants_scan(0, 400)
    open_blocks = np.flatnonzero(gate_reference(x, gate.block_len)[0])
    assert wanted[open_blocks.min() - 6] and not wanted[open_blocks.min() - 7]
    assert wanted[open_blocks.max() + 4] and not wanted[open_blocks.max() + 5]
    with pytest.raises(ValueError, match="whole blocks"):
        gate.measure(x[:5])
