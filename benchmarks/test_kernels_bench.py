"""Micro-benchmarks: each numba kernel (through its public wrapper) against its twin.

Run with ``make bench`` or ``pytest benchmarks/test_kernels_bench.py
--benchmark-group-by=group``; pytest-benchmark (extra ``bench``) reports each pair
side by side, and the ratio of their medians is the kernel's speed-up.  Not part of
``make test`` (pytest's testpaths is tests/).  Every kernel runs once before timing
(numba compiles or loads its cache then), and each pair is checked equal first, so
a fast kernel that computes something else cannot pass for a speed-up.

Inputs are seeded white noise or our modulator's chips at a channel's rate, sized
like one receiver block (65536 input samples at 2.4 MS/s, decimated by 4).
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.channel import Channelizer, block_dc_reference, channelize_reference
from dsp.channel_plan import plan_channels
from dsp.chipfamily import CHIP_FAMILIES
from dsp.fsk import (
    coherent_soft,
    coherent_soft_reference,
    header_metric,
    header_metric_reference,
    tone_prefix,
    tone_prefix_reference,
)
from dsp.modulator import modulate
from dsp.squelch import NoiseGate, gate_reference
from dsp.sync import SyncScanner, scan_reference
from dsp.timing import correlate_chips, track_chips, track_reference

pytest.importorskip("pytest_benchmark")

FS_HZ, FC_HZ = 2_400_000.0, 868_950_000.0
BLOCK = 1 << 16
TC_RATE_HZ = 600_000.0  # a T/C channel: 2.4 MS/s / 4


def _noise(n: int, seed: int = 1, scale: float = 1.0) -> np.ndarray:
    gen = np.random.default_rng(seed)
    return (scale * (gen.normal(size=n) + 1j * gen.normal(size=n))).astype(np.complex64)


def _tc_burst(n_data: int = 2000, noise: float = 0.3):
    """Header + random chips of the T/C family at TC_RATE_HZ, with noise."""
    fam = CHIP_FAMILIES["TC"]
    known = np.array([int(c) for c in fam.pattern], dtype=np.uint8)
    gen = np.random.default_rng(2)
    chips = np.concatenate([known, gen.integers(0, 2, n_data).astype(np.uint8)])
    iq = modulate(chips, fam.chip_rate_hz, fam.deviation_hz, TC_RATE_HZ)
    iq = np.concatenate([np.zeros(300), iq, np.zeros(300)]) + _noise(
        iq.size + 600, 3, noise
    )
    return iq.astype(np.complex64), chips, known, fam


def _pair(benchmark, fast, slow, which: str):
    """Benchmark ``fast`` or ``slow`` (after one untimed call of each)."""
    fast()
    slow()
    benchmark(fast if which == "kernel" else slow)


BOTH = pytest.mark.parametrize("which", ["kernel", "reference"])


@BOTH
@pytest.mark.benchmark(group="channelize")
def test_channelize(benchmark, which):
    outs = plan_channels(FS_HZ, FC_HZ)
    x = _noise(BLOCK)

    def fast():
        return Channelizer(FS_HZ, outs).process(x)

    def slow():
        return [
            block_dc_reference(channelize_reference(x, o, FS_HZ))
            if o.dc_block
            else channelize_reference(x, o, FS_HZ)
            for o in outs
        ]

    for got, want in zip(fast(), slow(), strict=True):
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    _pair(benchmark, fast, slow, which)


@BOTH
@pytest.mark.benchmark(group="tone_prefix")
def test_tone_prefix(benchmark, which):
    z = _noise(BLOCK // 4)
    np.testing.assert_allclose(
        tone_prefix(z, 0.083, 17), tone_prefix_reference(z, 0.083, 17), atol=1e-4
    )
    _pair(
        benchmark,
        lambda: tone_prefix(z, 0.083, 17),
        lambda: tone_prefix_reference(z, 0.083, 17),
        which,
    )


@BOTH
@pytest.mark.benchmark(group="header_metric")
def test_header_metric(benchmark, which):
    z = _noise(4000)
    p1, p0 = tone_prefix(z, 0.08), tone_prefix(z, -0.08)
    gen = np.random.default_rng(4)
    signs = np.where(gen.integers(0, 2, 34) == 1, 1.0, -1.0)
    ends = 3000 + gen.uniform(-3, 3, 200)
    periods = 6 + gen.uniform(-0.2, 0.2, 200)
    args = (p1, p0, ends, periods, signs)
    for g, w in zip(header_metric(*args), header_metric_reference(*args), strict=True):
        np.testing.assert_allclose(g, w, rtol=1e-9)
    _pair(
        benchmark,
        lambda: header_metric(*args),
        lambda: header_metric_reference(*args),
        which,
    )


@BOTH
@pytest.mark.benchmark(group="coherent_soft")
def test_coherent_soft(benchmark, which):
    gen = np.random.default_rng(5)
    chips = gen.integers(0, 2, 4000).astype(np.uint8)
    iq = modulate(chips, 1.0, 1.0, 8.0, start_phase_rad=0.7) + _noise(
        chips.size * 8, 6, 0.3
    )
    track = correlate_chips(
        iq.astype(np.complex64), 0, 0.125, -0.125, np.arange(chips.size) * 8.0, 8.0
    )
    args = (track.y_one, track.y_zero, chips[:40])
    np.testing.assert_allclose(
        coherent_soft(*args), coherent_soft_reference(*args), rtol=1e-9, atol=1e-9
    )
    _pair(
        benchmark,
        lambda: coherent_soft(*args),
        lambda: coherent_soft_reference(*args),
        which,
    )


@BOTH
@pytest.mark.benchmark(group="gate")
def test_gate(benchmark, which):
    rate = 600_000.0
    block_len = NoiseGate(rate).block_len
    x = _noise(block_len * (BLOCK // 4 // block_len), 7, 0.1)

    def fast():
        gate = NoiseGate(rate)
        gate.measure(x)
        return gate

    gate = fast()
    floors = [gate.floor(b) for b in range(gate.n_blocks)]
    np.testing.assert_allclose(floors, gate_reference(x, block_len)[1], rtol=1e-6)
    _pair(benchmark, fast, lambda: gate_reference(x, block_len), which)


@BOTH
@pytest.mark.benchmark(group="sync_scan")
def test_sync_scan(benchmark, which):
    iq, _, _, fam = _tc_burst()

    # the nominal chip-rate hypothesis alone: kernel and twin do the same work
    def fast():
        scanner = SyncScanner(fam, TC_RATE_HZ)
        scanner.reset(32)
        return [m for m in scanner.scan_matches(iq, 0, iq.size) if m[3] == 0]

    scanner = SyncScanner(fam, TC_RATE_HZ)
    first = int(np.ceil(32 / scanner.grid_steps[0]))
    assert len(fast()) == len(scan_reference(iq, 0, scanner, first))
    _pair(benchmark, fast, lambda: scan_reference(iq, 0, scanner, first), which)


@BOTH
@pytest.mark.benchmark(group="track")
def test_track(benchmark, which):
    iq, chips, known, fam = _tc_burst()
    dev = fam.deviation_hz / TC_RATE_HZ
    period = TC_RATE_HZ / fam.chip_rate_hz
    energy = period**2

    def fast():
        return track_chips(iq, 0, dev, -dev, 300.3, period, known, chips.size, energy)

    def slow():
        return track_reference(
            tone_prefix(iq, dev),
            tone_prefix(iq, -dev),
            dev,
            -dev,
            0,
            300.3,
            period,
            known,
            chips.size,
            energy,
        )

    np.testing.assert_allclose(fast().soft, slow().soft, rtol=1e-9)
    _pair(benchmark, fast, slow, which)
