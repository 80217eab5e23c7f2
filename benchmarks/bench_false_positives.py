"""False telegrams on pure noise: the CRC gate must let none through.

Feeds the full receiver (every channel, 2.4 MS/s at 868.95 MHz by default) with seeded
complex white Gaussian noise, one second per block, and counts the frames it reports.
The receiver issue asks for zero on an hour of noise.

Run: ``.venv/bin/python benchmarks/bench_false_positives.py --seconds 3600``
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from dsp.receiver import Receiver


def run(
    seconds: int,
    sample_rate_hz: float,
    center_freq_hz: float,
    seed: int,
    level: float,
    emit_bad_crc: bool,
) -> tuple[int, int, float]:
    """Return (frames with good CRC, frames with bad CRC, wall seconds)."""
    receiver = Receiver(sample_rate_hz, center_freq_hz, emit_bad_crc=emit_bad_crc)
    rng = np.random.default_rng(seed)
    block = int(sample_rate_hz)
    good = bad = 0
    started = time.perf_counter()
    for _ in range(seconds):
        noise = rng.standard_normal((block, 2), dtype=np.float32) * level
        frames = receiver.feed(noise.view(np.complex64).ravel())
        good += sum(f.crc_ok for f in frames)
        bad += sum(not f.crc_ok for f in frames)
    frames = receiver.flush()
    good += sum(f.crc_ok for f in frames)
    bad += sum(not f.crc_ok for f in frames)
    return good, bad, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="noise duration, s")
    parser.add_argument("--rate", type=float, default=2.4e6, help="sample rate, Hz")
    parser.add_argument("--center", type=float, default=868.95e6, help="centre, Hz")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--level",
        type=float,
        default=0.1,
        help="noise standard deviation per component (full scale 1)",
    )
    parser.add_argument(
        "--all",
        action="store_true",
        help="also count frames whose CRC failed (emit_bad_crc)",
    )
    args = parser.parse_args()
    good, bad, wall = run(
        args.seconds, args.rate, args.center, args.seed, args.level, args.all
    )
    print(
        f"{args.seconds} s of noise at {args.rate:g} S/s: {good} frames with good "
        f"CRC (false telegrams), {bad} bad-CRC frames reported; "
        f"{args.seconds * args.rate / wall / 1e6:.1f} MS/s"
    )


if __name__ == "__main__":
    main()
