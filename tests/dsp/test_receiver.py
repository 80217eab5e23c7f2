"""The receiver end to end: the bundled recording, the real capture, noise, the API.

Truth comes from outside the receiver: the recording's SigMF annotations (written by
our transmitter), the capture's README in ../shared (read at run time, never copied),
and telegrams built here with ``tests.helpers_tx``.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from dsp.buffer import SampleBuffer
from dsp.modes import get_phy
from dsp.receiver import RawFrame, Receiver
from sdr.source_file import FileSource
from stack.frame import add_crcs, strip_crcs
from tests.helpers_tx import TxSpec, build_telegram, modulate_telegrams

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "recordings" / "multimode_868.95M_2400k.sigmf-meta"
CHANNEL_OF = {"S": 868.3e6, "T": 868.95e6, "C": 868.95e6, "C2": 869.525e6}


def _phy_of(mode: str, direction: str) -> str:
    if mode.startswith("S") or (mode == "T2" and direction == "other"):
        return "S"
    if mode == "C2" and direction == "other":
        return "C2"
    return mode[0]


def _read_all(path) -> tuple[np.ndarray, FileSource]:
    source = FileSource(str(path))
    parts = []
    while True:
        block = source.read(1 << 20)
        if block.size == 0:
            break
        parts.append(block)
    return np.concatenate(parts), source


def _receive(rx: Receiver, iq: np.ndarray, block: int) -> list[RawFrame]:
    frames = []
    for lo in range(0, iq.size, block):
        frames += rx.feed(iq[lo : lo + block])
    return frames + rx.flush()


@pytest.fixture(scope="module")
def recording():
    iq, source = _read_all(RECORDING)
    return iq, source.annotations, source.sample_rate_hz, source.center_freq_hz


@pytest.fixture(scope="module")
def recording_frames(recording):
    iq, _, fs, fc = recording
    return {
        block: _receive(Receiver(fs, fc), iq, block) for block in (iq.size, 65536, 1000)
    }


def test_recording_every_telegram_decoded(recording, recording_frames):
    iq, annotations, fs, _ = recording
    frames = recording_frames[iq.size]
    assert all(f.crc_ok for f in frames)
    assert sorted(f.data.hex() for f in frames) == sorted(
        a.frame_hex for a in annotations
    )
    for ann in annotations:
        direction = ann.extra["wmbus:direction"]
        frame = next(
            f
            for f in frames
            if f.data.hex() == ann.frame_hex
            and abs(f.sample_index - ann.sample_start) < ann.sample_count
        )
        phy = get_phy(ann.mode, direction)
        assert frame.phy == _phy_of(ann.mode, direction)
        assert frame.frame_format == ann.frame_format
        assert frame.channel_hz == CHANNEL_OF[frame.phy]
        # sync word starts after the preamble pairs; one chip of tolerance
        chip = fs / phy.chip_rate_hz
        sync = ann.sample_start + 2 * phy.preamble_pairs * chip
        assert frame.sample_index == pytest.approx(sync, abs=chip)
        assert frame.time_s == pytest.approx(frame.sample_index / fs)
        assert frame.freq_offset_hz == pytest.approx(
            ann.carrier_hz - frame.channel_hz, abs=1500
        )
        # written at 0.35 of full scale, plus the telegram's own gain; the burst
        # power holds the channel noise too: take it out with the SNR
        level = 20 * np.log10(0.35) + ann.extra["wmbus:gain_db"]
        snr = 10 ** (frame.snr_db / 10)
        signal_db = frame.rssi_dbfs + 10 * np.log10(snr / (1 + snr))
        assert signal_db == pytest.approx(level, abs=1.0)
        assert frame.snr_db > 0


def test_recording_output_does_not_depend_on_block_size(recording, recording_frames):
    whole = recording_frames[recording[0].size]
    assert len(whole) == len(recording[1])
    for block in (65536, 1000):
        assert recording_frames[block] == whole


def test_recording_overlapping_telegrams_on_two_channels(recording, recording_frames):
    """The recording holds telegrams on air at the same moment on different channels
    (S1 + T1, C2 downlink + T1): each such pair is decoded."""
    _, annotations, _, _ = recording
    decoded = {f.data.hex() for f in recording_frames[recording[0].size]}
    pairs = [
        (a, b)
        for i, a in enumerate(annotations)
        for b in annotations[i + 1 :]
        if a.sample_start < b.sample_start + b.sample_count
        and b.sample_start < a.sample_start + a.sample_count
        and a.carrier_hz // 200e3 != b.carrier_hz // 200e3
    ]
    assert len(pairs) >= 2
    for a, b in pairs:
        assert a.frame_hex in decoded and b.frame_hex in decoded


def test_phys_selects_chains(recording):
    iq, annotations, fs, fc = recording
    rx = Receiver(fs, fc, phys=["T"])
    assert rx.channels == [("T", 868.95e6)]
    frames = _receive(rx, iq, iq.size)
    assert {f.phy for f in frames} == {"T"}
    assert len(frames) == sum(a.mode == "T1" for a in annotations)


# -- the real capture ----------------------------------------------------------------
def _readme_telegrams(shared: Path) -> list[str]:
    text = (shared / "recordings" / "README.md").read_text()
    return re.findall(r"^- \(\d\) `([0-9a-f]+)`", text, flags=re.MULTILINE)


def test_real_capture_both_telegrams(shared):
    path = shared / "recordings" / "rtlsdr_868.950M_1M6_samples2.cu8"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    expected = _readme_telegrams(shared)
    assert len(expected) == 2
    iq, source = _read_all(path)
    frames = _receive(
        Receiver(source.sample_rate_hz, source.center_freq_hz), iq, 1 << 16
    )
    got = [strip_crcs(f.data, f.frame_format).hex() for f in frames]
    assert got == expected
    for frame in frames:
        assert frame.phy == "T" and frame.crc_ok
        # both carriers sit about 11-13 kHz below 868.95 MHz (README)
        assert -16e3 < frame.freq_offset_hz < -9e3


# -- noise, bad CRCs, API ------------------------------------------------------------
@pytest.mark.parametrize("emit_bad_crc", [False, True])
def test_noise_dc_and_clipping_give_no_frames(emit_bad_crc):
    fs = 2.4e6
    gen = np.random.default_rng(99)
    rx = Receiver(fs, 868.95e6, emit_bad_crc=emit_bad_crc)
    frames = []
    for second in range(4):
        n = int(fs)
        x = (gen.normal(size=n) + 1j * gen.normal(size=n)) * 0.3
        if second == 1:
            x *= 5.0  # hard clipping below
        if second == 2:
            x[: n // 2] *= 0.01  # near silence, then a jump
        x = x + (0.05 - 0.03j)  # a tuner's DC offset
        x = np.clip(x.real, -1, 1) + 1j * np.clip(x.imag, -1, 1)
        x = x.astype(np.complex64)
        for lo in range(0, n, 1 << 16):
            frames += rx.feed(x[lo : lo + (1 << 16)])
    frames += rx.flush()
    assert frames == []


def test_garbage_floats_give_no_frames_and_no_errors():
    gen = np.random.default_rng(7)
    x = (gen.normal(size=200_000) + 1j * gen.normal(size=200_000)).astype(np.complex64)
    x[1000:1100] = np.nan
    x[5000] = np.inf
    x[9000:9010] = 1e30 - 1e30j
    rx = Receiver(2.4e6, 868.95e6, emit_bad_crc=True)
    assert _receive(rx, x, 30_000) == []
    # the stream afterwards is unharmed: a telegram still decodes
    tel = build_telegram("QWE", "87654321", 30, seed=9)
    iq, _ = _capture([TxSpec(tel, "T1")])
    assert [f.data for f in _receive(rx, np.concatenate([x, iq]), 30_000)] == [
        add_crcs(tel, "A")
    ]


def _capture(specs, fs=2.4e6, fc=868.95e6, noise=0.02, seed=5):
    iq, spans = modulate_telegrams(specs, sample_rate_hz=fs, center_freq_hz=fc)
    gen = np.random.default_rng(seed)
    iq = iq + noise * (gen.normal(size=iq.size) + 1j * gen.normal(size=iq.size))
    return iq.astype(np.complex64), spans


def test_bad_crc_frames_only_with_emit_bad_crc():
    tel = build_telegram("QWE", "12345678", 40, seed=3)
    good = add_crcs(tel, "A")
    broken = bytearray(good)
    broken[-1] ^= 0x01  # last CRC byte
    iq, _ = _capture([TxSpec(tel, "T1", on_air=bytes(broken)), TxSpec(tel, "C1")])
    strict = _receive(Receiver(2.4e6, 868.95e6), iq, 1 << 16)
    assert [(f.phy, f.crc_ok) for f in strict] == [("C", True)]
    loose = _receive(Receiver(2.4e6, 868.95e6, emit_bad_crc=True), iq, 1 << 16)
    assert [(f.phy, f.crc_ok) for f in loose] == [("T", False), ("C", True)]
    assert loose[0].data == bytes(broken)


def test_flush_decides_a_telegram_at_the_end_and_restarts():
    tel = build_telegram("QWE", "12345678", 30, seed=4)
    iq, spans = _capture([TxSpec(tel, "C1")])
    iq = iq[: spans[0][1] + 10]  # the stream ends right after the burst
    rx = Receiver(2.4e6, 868.95e6)
    assert rx.feed(iq) == []
    assert [f.data for f in rx.flush()] == [add_crcs(tel, "A")]
    assert [f.data for f in _receive(rx, iq, iq.size)] == [add_crcs(tel, "A")]


def test_random_block_sizes_give_the_same_frames(rng):
    specs = [
        TxSpec(
            build_telegram("ABC", f"{k:08d}", 30 + 7 * k, seed=k),
            mode,
            fmt,
            carrier_offset_hz=off,
        )
        for k, (mode, fmt, off) in enumerate(
            [("S1-m", "A", 20e3), ("T1", "A", -35e3), ("C1", "B", 50e3)]
        )
    ]
    iq, _ = _capture(specs)
    whole = _receive(Receiver(2.4e6, 868.95e6), iq, iq.size)
    assert len(whole) == 3
    rx = Receiver(2.4e6, 868.95e6)
    frames, pos = [], 0
    while pos < iq.size:
        n = int(rng.integers(1, 40_000))
        frames += rx.feed(iq[pos : pos + n])
        pos += n
    assert frames + rx.flush() == whole


def test_memory_stays_flat_on_a_long_stream():
    fs = 1.6e6
    rx = Receiver(fs, 868.625e6)
    gen = np.random.default_rng(1)
    block = (0.1 * (gen.normal(size=1 << 16) + 1j * gen.normal(size=1 << 16))).astype(
        np.complex64
    )
    sizes = []
    for _ in range(150):  # 6 s
        rx.feed(block)
        sizes.append(sum(c.buffer._data.size for c in rx._chains))
    assert sizes[-1] == sizes[50]


def test_channels_and_bad_arguments():
    assert Receiver(2.4e6, 868.95e6).channels == [
        ("S", 868.3e6),
        ("T", 868.95e6),
        ("C", 868.95e6),
        ("C2", 869.525e6),
    ]
    assert Receiver(1.6e6, 868.625e6).channels == [
        ("S", 868.3e6),
        ("T", 868.95e6),
        ("C", 868.95e6),
    ]
    assert Receiver(1.2e6, 869.525e6, phys="C2,S").channels == [("C2", 869.525e6)]
    # at low rates, the channels that fit: T/C needs 378 kS/s, centred
    assert Receiver(1.0e6, 868.95e6).channels == [("T", 868.95e6), ("C", 868.95e6)]
    assert Receiver(0.38e6, 868.95e6).channels == [("T", 868.95e6), ("C", 868.95e6)]
    assert Receiver(0.37e6, 868.95e6).channels == []
    with pytest.raises(ValueError, match="too low for any wM-Bus channel"):
        Receiver(250e3, 868.95e6)
    with pytest.raises(ValueError, match="unknown receiver chain"):
        Receiver(2.4e6, 868.95e6, phys=["X"])
    rx = Receiver(2.4e6, 868.95e6)
    for bad in (np.zeros(10, np.complex128), np.zeros((2, 2), np.complex64), [0j]):
        with pytest.raises(ValueError, match="complex64"):
            rx.feed(bad)
    assert rx.feed(np.zeros(0, np.complex64)) == []


def test_sample_buffer_windows():
    buf = SampleBuffer(capacity=16)
    data = np.arange(100, dtype=np.complex64)
    for lo in range(0, 100, 7):
        buf.append(data[lo : lo + 7])
        buf.trim(buf.end - 20)
    assert (buf.start, buf.end) == (80, 100)
    np.testing.assert_array_equal(buf.get(85, 90), data[85:90])
    with pytest.raises(ValueError, match="not held"):
        buf.get(10, 20)


@pytest.mark.parametrize("block", [1000, 65536, None])
def test_frames_come_in_sync_order_across_channels(block):
    """A long S1-m frame starts first; short T1 and C2-downlink frames start during it
    on other channels and are decided long before it ends.  They must come out after
    it, in the order their sync words start, for any block size."""
    from dsp.impair import add_awgn
    from dsp.modulator import compose, frame_burst

    fs, fc = 2.4e6, 868.95e6
    sends = [  # (mode, direction, telegram bytes, start sample)
        ("S1-m", "meter", 120, 3_000),
        ("T1", "meter", 30, 40_000),
        ("C2", "other", 30, 70_000),
        ("T1", "meter", 40, 260_000),
    ]
    frames, bursts = [], []
    for k, (mode, direction, size, start) in enumerate(sends):
        frame = add_crcs(build_telegram("ORD", f"0000000{k}", size, seed=80 + k), "A")
        frames.append(frame)
        bursts.append(
            frame_burst(
                frame, mode, direction, "A", sample_rate_hz=fs, start_sample=start
            )
        )
    # the S1-m frame outlasts the next two bursts; the last starts after it
    assert bursts[0].stop_sample > bursts[2].stop_sample > bursts[1].stop_sample
    assert bursts[3].start_sample > bursts[0].stop_sample
    iq = compose(bursts, fc, fs, max(b.stop_sample for b in bursts) + 5_000)
    iq = add_awgn(iq, 18.0, 16384.0, fs, np.random.default_rng(8), signal_power=1.0)
    got = _receive(Receiver(fs, fc), iq.astype(np.complex64), block or iq.size)
    assert [f.data for f in got] == frames
    assert [f.phy for f in got] == ["S", "T", "C2", "T"]
    indices = [f.sample_index for f in got]
    assert indices == sorted(indices)
