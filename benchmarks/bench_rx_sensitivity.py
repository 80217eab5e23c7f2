"""Receiver sensitivity: frame success against Eb/N0 per mode (issue 4).

Telegrams of 50 bytes (no-CRC form, made up by ``tests.helpers_tx.build_telegram``)
go through our transmitter (``sdr.transmit.render``) at 1.6 MS/s centred on 868.625
MHz (S at -325 kHz, T/C at +325 kHz), with white noise at the given Eb/N0 (per
information bit, N0 = complex noise variance / sample rate), each telegram with its
own random carrier offset, then through cu8 quantisation (rms 0.35 of full scale),
into ``dsp.receiver.Receiver`` with default options.  (The C2 downlink, at 869.525
MHz, is received with the centre at 868.95 MHz instead.)  Success = a frame whose bytes
equal the frame sent.

Run: ``.venv/bin/python benchmarks/bench_rx_sensitivity.py [--modes T1,C1,S1]
[--ebn0 8:14:1] [--count 100]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dsp.convert import bytes_to_iq, iq_to_bytes  # noqa: E402
from dsp.receiver import Receiver  # noqa: E402
from sdr.transmit import TxFrame, render  # noqa: E402
from stack.frame import add_crcs  # noqa: E402
from tests.helpers_tx import build_telegram  # noqa: E402

SAMPLE_RATE_HZ = 1_600_000.0
CENTER_FREQ_HZ = 868_625_000.0
# (mode, direction, frame format) per name on the command line
MODES = {
    "S1": ("S1", "meter", "A"),
    "S1-m": ("S1-m", "meter", "A"),
    "T1": ("T1", "meter", "A"),
    "C1": ("C1", "meter", "A"),
    "C1B": ("C1", "meter", "B"),
    "T2o": ("T2", "other", "A"),
    "C2o": ("C2", "other", "A"),
}
TELEGRAM_BYTES = 50
CU8_RMS = 0.35


def run_point(
    name: str,
    ebn0_db: float,
    count: int,
    seed: int = 1,
    cfo_span_hz: float = 20_000.0,
    chip_ppm: float = 0.0,
    clock_ppm: float = 0.0,
    sample_rate_hz: float = SAMPLE_RATE_HZ,
    center_freq_hz: float = CENTER_FREQ_HZ,
    cu8: bool = True,
    block: int = 1 << 16,
) -> tuple[int, int]:
    """Send ``count`` telegrams of mode ``name``; return (decoded right, frames out)."""
    mode, direction, fmt = MODES[name]
    if direction == "other" and mode == "C2":  # 869.525 MHz: not inside 868.625 +-0.8
        center_freq_hz = 868_950_000.0
    rng = np.random.default_rng(seed)
    frames, sent = [], []
    for k in range(count):
        tel = build_telegram("ABC", f"{k:08d}", TELEGRAM_BYTES, seed=seed * 1000 + k)
        cfo = float(rng.uniform(-cfo_span_hz, cfo_span_hz))
        frames.append(
            TxFrame(
                tel,
                mode,
                fmt,
                direction,
                carrier_offset_hz=cfo,
                chip_rate_error_ppm=chip_ppm,
            )
        )
        sent.append(add_crcs(tel, fmt))
    # a fresh noise realisation per point, so that points are independent trials
    iq, _ = render(
        frames,
        sample_rate_hz=sample_rate_hz,
        center_freq_hz=center_freq_hz,
        gap_s=0.004,
        ebn0_db=ebn0_db,
        clock_ppm=clock_ppm,
        seed=seed * 1000 + int(round(ebn0_db * 10)),
    )
    if cu8:
        rms = float(np.sqrt(np.mean(np.abs(iq) ** 2)))
        iq = bytes_to_iq(iq_to_bytes(iq * (CU8_RMS / rms), "cu8"), "cu8")
    rx = Receiver(sample_rate_hz, center_freq_hz)
    out = []
    for lo in range(0, iq.size, block):
        out += rx.feed(iq[lo : lo + block])
    out += rx.flush()
    want = set(sent)
    good = sum(1 for f in out if f.data in want)
    return good, len(out)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", default="T1,C1,S1")
    parser.add_argument("--ebn0", default="8:14:1", help="start:stop:step dB")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    lo, hi, step = (float(v) for v in args.ebn0.split(":"))
    points = np.arange(lo, hi + step / 2, step)
    for name in args.modes.split(","):
        row = []
        t0 = time.perf_counter()
        for ebn0 in points:
            good, _ = run_point(name, float(ebn0), args.count, args.seed)
            row.append(f"{ebn0:.1f}:{100 * good / args.count:.0f}%")
        print(
            f"{name:5s} " + "  ".join(row) + f"   ({time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
