"""Receiver throughput and memory on one core, against rtl_433 on the same file.

Builds a cu8 capture (2.4 MS/s, centre 868.95 MHz, all three channels in band) of
noise with a telegram every 0.25 s, cycling S1-m, T1, C1 (A and B) and the C2
downlink at a comfortable level, then measures:

- receiver only: ``Receiver.feed`` on 65536-sample blocks already in memory;
- end to end: ``sdr.source_file.FileSource`` reading and converting the file, then
  ``Receiver.feed``, in a child process whose peak RSS is reported (started before
  this process holds the capture in memory: a forked child's peak RSS would count
  the parent's pages); its start-up (imports, loading the compiled kernels from the
  numba cache) is timed separately;
- rtl_433 (Debian ``rtl-433``) decoding the same file with its wM-Bus decoders
  (-R 104 -R 105), if installed.

Each timing is the median of ``--repeat`` runs after a warm-up (numba compiles once).
Run: ``.venv/bin/python benchmarks/bench_rx_throughput.py [--seconds 20] [--repeat 3]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsp.convert import iq_to_bytes  # noqa: E402
from dsp.impair import add_awgn  # noqa: E402
from dsp.modulator import compose, frame_burst  # noqa: E402
from dsp.receiver import Receiver  # noqa: E402
from stack.frame import add_crcs  # noqa: E402
from tests.helpers_tx import build_telegram  # noqa: E402

SAMPLE_RATE_HZ = 2_400_000.0
CENTER_FREQ_HZ = 868_950_000.0
BLOCK = 1 << 16
CYCLE = [
    ("S1-m", "meter", "A"),
    ("T1", "meter", "A"),
    ("C1", "meter", "A"),
    ("C1", "meter", "B"),
    ("C2", "other", "A"),
]


def make_capture(path: Path, seconds: float, seed: int = 1) -> int:
    """Write the cu8 capture in 1 s pieces; return the number of telegrams."""
    rng = np.random.default_rng(seed)
    n_sent = 0
    per_second = int(SAMPLE_RATE_HZ)
    with path.open("wb") as fh:
        for second in range(int(seconds)):
            bursts = []
            for k in range(4):
                mode, direction, fmt = CYCLE[(4 * second + k) % len(CYCLE)]
                tel = build_telegram("BEN", f"{second:04d}{k:04d}", 48, seed=n_sent)
                start = int((k * 0.25 + 0.02) * SAMPLE_RATE_HZ)
                bursts.append(
                    frame_burst(
                        add_crcs(tel, fmt),
                        mode,
                        direction,
                        fmt,
                        sample_rate_hz=SAMPLE_RATE_HZ,
                        start_sample=start,
                        carrier_offset_hz=float(rng.uniform(-30e3, 30e3)),
                        gain_db=-10.0,
                    )
                )
                n_sent += 1
            iq = compose(bursts, CENTER_FREQ_HZ, SAMPLE_RATE_HZ, per_second)
            iq = add_awgn(iq, 30.0, 16384.0, SAMPLE_RATE_HZ, rng, signal_power=1.0)
            fh.write(iq_to_bytes(iq * 0.3, "cu8"))
    return n_sent


def receiver_only(iq: np.ndarray) -> tuple[float, int]:
    rx = Receiver(SAMPLE_RATE_HZ, CENTER_FREQ_HZ)
    start = time.perf_counter()
    frames = []
    for lo in range(0, iq.size, BLOCK):
        frames += rx.feed(iq[lo : lo + BLOCK])
    frames += rx.flush()
    return time.perf_counter() - start, sum(f.crc_ok for f in frames)


_CHILD = """
import time
t_start = time.perf_counter()
import resource, sys, json
sys.path.insert(0, {root!r})
import numpy as np
from sdr.source_file import FileSource
from dsp.receiver import Receiver
Receiver({fs}, {fc}).feed(np.zeros({block}, np.complex64))  # load the kernels
startup = time.perf_counter() - t_start
src = FileSource({path!r}, sample_rate_hz={fs}, center_freq_hz={fc})
rx = Receiver({fs}, {fc})
t0 = time.perf_counter(); n = 0; frames = 0
while True:
    iq = src.read({block})
    if iq.size == 0:
        break
    n += iq.size
    frames += len(rx.feed(iq))
frames += len(rx.flush())
dt = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": dt, "samples": n, "frames": frames, "rss_mb": rss,
                  "startup": startup}}))
"""


def end_to_end(path: Path) -> dict:
    """Run the receiver on the file in a fresh process; /usr/bin/time measures its
    peak RSS (a forked child's own getrusage would include the parent's pages)."""
    code = _CHILD.format(
        root=str(ROOT),
        path=str(path),
        fs=SAMPLE_RATE_HZ,
        fc=CENTER_FREQ_HZ,
        block=BLOCK,
    )
    timer = shutil.which("time") or (
        "/usr/bin/time" if Path("/usr/bin/time").exists() else None
    )
    cmd = [sys.executable, "-c", code]
    if timer:
        cmd = [timer, "-f", "maxrss_kb=%M"] + cmd
    out = subprocess.run(
        cmd,
        check=True,
        capture_output=True,
        text=True,
        env={"NUMBA_CACHE_DIR": str(ROOT / ".numba_cache"), "PATH": "/usr/bin:/bin"},
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    for line in out.stderr.splitlines():
        if line.startswith("maxrss_kb="):
            result["rss_mb"] = int(line.split("=")[1]) / 1024
    return result


def rtl_433(path: Path) -> tuple[float, int] | None:
    exe = shutil.which("rtl_433")
    if exe is None:
        return None
    # rate, centre and format from the file name; minmax detects T and C at 2.4 MS/s
    # (see tests/test_rtl433_oracle.py)
    cmd = [
        exe,
        "-c",
        "/dev/null",
        "-R",
        "104",
        "-R",
        "105",
        "-Y",
        "minmax",
        "-F",
        "json",
        "-r",
        str(path),
    ]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    return elapsed, sum(1 for line in out.stdout.splitlines() if line.startswith("{"))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_868.95M_2400k.cu8"
        n_sent = make_capture(path, args.seconds)
        e2e = [end_to_end(path) for _ in range(args.repeat)]
        raw = np.fromfile(path, dtype=np.uint8)
        iq = ((raw.astype(np.float32) - 127.5) / 127.5).view(np.complex64)
        receiver_only(iq[: 1 << 18])  # warm-up: numba compiles or loads its cache
        runs = [receiver_only(iq) for _ in range(args.repeat)]
        dt = statistics.median(r[0] for r in runs)
        print(f"capture: {args.seconds:.0f} s at 2.4 MS/s, {n_sent} telegrams sent")
        print(
            f"receiver only: {iq.size / dt / 1e6:.1f} MS/s "
            f"({iq.size / dt / SAMPLE_RATE_HZ:.1f}x real time), "
            f"{runs[0][1]} frames decoded"
        )
        best = sorted(e2e, key=lambda r: r["seconds"])[len(e2e) // 2]
        print(
            f"file to frames: {best['samples'] / best['seconds'] / 1e6:.1f} MS/s, "
            f"{best['frames']} frames, peak RSS {best['rss_mb']:.0f} MB, start-up "
            f"{best['startup']:.2f} s"
        )
        theirs = [rtl_433(path) for _ in range(args.repeat)]
        if theirs[0] is None:
            print("rtl_433: not installed")
        else:
            t = statistics.median(r[0] for r in theirs)
            print(
                f"rtl_433 -R 104 -R 105: {iq.size / t / 1e6:.1f} MS/s, "
                f"{theirs[0][1]} telegrams; us / rtl_433 = "
                f"{(best['samples'] / best['seconds']) / (iq.size / t):.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
