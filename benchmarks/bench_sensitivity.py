"""Receiver sensitivity: frame success against Eb/N0, carrier offset and clock error.

Each point sends ``count`` made-up telegrams of 50 bytes (no-CRC form,
``bench_throughput.bench_telegram``) of one mode and frame format through our
transmitter (``sdr.transmit.render``) at 1.6 MS/s, centred on that mode's channel
(868.3, 868.95 or 869.525 MHz, so that rtl_433 can read the same file), with white
noise at the point's Eb/N0 (per information bit; N0 = complex noise variance /
sample rate).  The baseband is quantised to cu8 (rms at 0.35 of full scale) and
written as an rtl_433-style file; our receiver (``dsp.receiver.Receiver``, default
options) and, with ``compare``, the peer read that same file.

Success: a frame with good CRCs whose bytes equal the frame sent (ours), or a report
naming the telegram's meter id (the peer; rtl_433 checks every CRC before it
prints).  Sweeps:

    ebn0    Eb/N0 points; each telegram with its own carrier offset, uniform +-20 kHz
    cfo     all telegrams at one carrier offset, at ``sweep_ebn0_db``
    clock   the meter's chip clock off by the given ppm (offsets +-20 kHz),
            at ``sweep_ebn0_db``

Beside them, ``benchmarks.theory``'s ideal curves for the same frame length.
Seeded and deterministic: a point's noise depends only on (seed, sweep, mode, point).
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_throughput import (  # noqa: E402
    MODES,
    bench_telegram,
    count_found,
    parse_modes,
    peer_commands,
)
from benchmarks.theory import frame_success  # noqa: E402

__all__ = [
    "Trial",
    "plan_trials",
    "run_trial",
    "theory_rows",
    "run_sensitivity",
    "write_table",
    "plot_results",
    "crossing_db",
    "crossings",
    "summary",
    "parse_points",
    "add_arguments",
    "run_from_args",
    "main",
]

SAMPLE_RATE_HZ = 1_600_000.0
TELEGRAM_BYTES = 50
CFO_SPAN_HZ = 20_000.0
CU8_RMS_FS = 0.35  # rms of signal + noise, share of full scale: almost nothing clips
BLOCK_SAMPLES = 1 << 16
GAP_S = 0.004
DEFAULT_MODES = "S1,T1,C1A,C1B"
DEFAULT_POINTS = "2:16:1"
COMPARE_POINTS = "18:40:2"  # rtl_433 needs 26..30 dB at 1.6 MS/s (its oracle test)
DEFAULT_CFO = "-100k:100k:20k"
DEFAULT_CLOCK = "-150000:150000:15000"
_PEER_TIMEOUT_S = 120.0
_LINE_CODES = {"S": "manchester", "T": "3of6", "C": "nrz", "C2": "nrz"}
_SWEEPS = ("ebn0", "cfo", "clock")


@dataclass(frozen=True, slots=True)
class Trial:
    """One point: ``count`` telegrams of mode ``name`` under one set of conditions."""

    sweep: str
    name: str
    ebn0_db: float
    cfo_hz: float | None  # None: each telegram its own, uniform +-CFO_SPAN_HZ
    chip_ppm: float
    count: int
    seed: int
    compare: str | None = None


def parse_points(text: str) -> list[float]:
    """Points from ``"2:16:1"`` (start:stop:step, stop included) or ``"1,2,5"``.

    Values may carry k/M suffixes (``-100k:100k:20k``).

    Raises
    ------
    ValueError
        Malformed text or a non-positive step.
    """
    from sdr.units import parse_frequency

    def value(item: str) -> float:
        item = item.strip()
        negative = item.startswith("-")
        number = parse_frequency(item.lstrip("-")) if item.lstrip("-") else None
        if number is None:
            raise ValueError(f"not a number: {item!r}")
        return -number if negative else number

    if ":" in text:
        parts = text.split(":")
        if len(parts) != 3:
            raise ValueError(f"give start:stop:step, not {text!r}")
        start, stop, step = (value(p) for p in parts)
        if step <= 0:
            raise ValueError(f"step must be positive in {text!r}")
        return [float(v) for v in np.arange(start, stop + step / 2, step)]
    points = [value(p) for p in text.split(",") if p.strip()]
    if not points:
        raise ValueError(f"no points in {text!r}")
    return points


def plan_trials(
    names: list[str],
    ebn0_points: list[float],
    cfo_points: list[float],
    clock_points: list[float],
    *,
    count: int,
    sweep_ebn0_db: float,
    seed: int,
    compare: str | None = None,
) -> list[Trial]:
    """Every trial of the three sweeps, in a fixed order."""
    trials = []
    for name in names:
        for ebn0 in ebn0_points:
            trials.append(Trial("ebn0", name, ebn0, None, 0.0, count, seed, compare))
        for cfo in cfo_points:
            trials.append(
                Trial("cfo", name, sweep_ebn0_db, cfo, 0.0, count, seed, compare)
            )
        for ppm in clock_points:
            trials.append(
                Trial("clock", name, sweep_ebn0_db, None, ppm, count, seed, compare)
            )
    return trials


def _noise_seed(trial: Trial) -> int:
    """A seed fixed by the trial's conditions only (not by its place in a list)."""
    key = [
        trial.seed,
        _SWEEPS.index(trial.sweep),
        list(MODES).index(trial.name),
        int(round(trial.ebn0_db * 100)),
        int(round((trial.cfo_hz or 0) / 10)),
        int(round(trial.chip_ppm)),
    ]
    return int(
        np.random.SeedSequence([k & 0xFFFFFFFF for k in key]).generate_state(1)[0]
    )


def _render_trial(trial: Trial, directory: Path) -> tuple[Path, list[bytes], list[str]]:
    """Write the trial's cu8 file; return it, the frames sent and their meter ids."""
    from dsp.convert import iq_to_bytes
    from dsp.modes import get_phy
    from sdr.filename import build_filename
    from sdr.transmit import TxFrame, render
    from stack.frame import add_crcs

    bench = MODES[trial.name]
    rng = np.random.default_rng(_noise_seed(trial))
    frames, sent, ids = [], [], []
    for k in range(trial.count):
        telegram = bench_telegram(k, TELEGRAM_BYTES, trial.seed)
        cfo = (
            trial.cfo_hz
            if trial.cfo_hz is not None
            else rng.uniform(-CFO_SPAN_HZ, CFO_SPAN_HZ)
        )
        frames.append(
            TxFrame(
                telegram,
                bench.mode,
                bench.frame_format,
                bench.direction,
                carrier_offset_hz=float(cfo),
                chip_rate_error_ppm=trial.chip_ppm,
            )
        )
        sent.append(add_crcs(telegram, bench.frame_format))
        ids.append(telegram[4:8][::-1].hex())
    center_hz = get_phy(bench.mode, bench.direction).carrier_hz
    iq, _ = render(
        frames,
        sample_rate_hz=SAMPLE_RATE_HZ,
        center_freq_hz=center_hz,
        gap_s=GAP_S,
        ebn0_db=trial.ebn0_db,
        seed=int(rng.integers(2**31)),
    )
    rms = float(np.sqrt(np.mean(np.abs(iq.astype(np.complex128)) ** 2)))
    path = directory / build_filename("sens", center_hz, SAMPLE_RATE_HZ, "cu8")
    path.write_bytes(iq_to_bytes(iq * np.float32(CU8_RMS_FS / rms), "cu8"))
    return path, sent, ids


def _ours(path: Path, center_hz: float, sent: list[bytes]) -> int:
    from dsp.convert import bytes_to_iq
    from dsp.receiver import Receiver

    iq = bytes_to_iq(path.read_bytes(), "cu8")
    rx = Receiver(SAMPLE_RATE_HZ, center_hz)
    frames = []
    for lo in range(0, iq.size, BLOCK_SAMPLES):
        frames += rx.feed(iq[lo : lo + BLOCK_SAMPLES])
    frames += rx.flush()
    got = {f.data for f in frames if f.crc_ok}
    return sum(1 for frame in sent if frame in got)


def _peer(trial: Trial, path: Path, ids: list[str]) -> int | None:
    """Telegrams the peer reported, or None when it has no decoder for the mode."""
    if trial.compare == "rtl_433" and MODES[trial.name].peer_detector is None:
        return None
    found: set[int] = set()
    for _, cmd in peer_commands(trial.compare, path, [trial.name]):
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            check=False,
            timeout=_PEER_TIMEOUT_S,
            cwd=path.parent,
        )
        found |= count_found(done.stdout, ids)
    return len(found)


def run_trial(trial: Trial) -> dict:
    """Render, receive (and let the peer receive) one trial; a row per receiver."""
    from dsp.modes import get_phy

    bench = MODES[trial.name]
    with tempfile.TemporaryDirectory(prefix="wmbus-bench-") as tmp:
        path, sent, ids = _render_trial(trial, Path(tmp))
        center_hz = get_phy(bench.mode, bench.direction).carrier_hz
        rows = [_row(trial, "wmbus-sdr", _ours(path, center_hz, sent))]
        if trial.compare:
            found = _peer(trial, path, ids)
            if found is not None:
                label = "rtl_433" if trial.compare == "rtl_433" else "peer"
                rows.append(_row(trial, label, found))
    return {"rows": rows}


def _row(
    trial: Trial, receiver: str, found: int | None, success: float | None = None
) -> dict:
    if success is None and found is not None:
        success = found / trial.count if trial.count else 0.0
    return {
        "sweep": trial.sweep,
        "mode": trial.name,
        "ebn0_db": trial.ebn0_db,
        "cfo_hz": trial.cfo_hz,
        "chip_ppm": trial.chip_ppm,
        "receiver": receiver,
        "sent": trial.count if found is not None else None,
        "found": found,
        "success": success,
    }


def frame_bits(name: str) -> int:
    """Information bits of a benchmark frame of mode ``name``: 8 per on-air byte."""
    from stack.frame import add_crcs

    return 8 * len(
        add_crcs(bench_telegram(0, TELEGRAM_BYTES), MODES[name].frame_format)
    )


def theory_rows(names: list[str], ebn0_points: list[float]) -> list[dict]:
    """Ideal, hard-chip and coherent frame success at every Eb/N0 point."""
    rows = []
    for name in names:
        code, n_bits = _LINE_CODES[MODES[name].phy], frame_bits(name)
        for ebn0 in ebn0_points:
            trial = Trial("ebn0", name, ebn0, None, 0.0, 0, 0)
            for det in ("ideal", "chip", "coherent"):
                value = float(frame_success(ebn0, n_bits, code, det))
                rows.append(_row(trial, f"theory-{det}", None, float(f"{value:.6g}")))
    return rows


def run_sensitivity(trials: list[Trial], jobs: int = 2) -> list[dict]:
    """Run the trials on ``jobs`` processes; rows in the trials' order."""
    if jobs <= 1:
        results = [run_trial(t) for t in trials]
    else:
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(run_trial, trials))
    return [row for result in results for row in result["rows"]]


_FIELDS = (
    "sweep",
    "mode",
    "ebn0_db",
    "cfo_hz",
    "chip_ppm",
    "receiver",
    "sent",
    "found",
    "success",
)


def write_table(rows: list[dict], meta: dict, out_dir: Path) -> tuple[Path, Path]:
    """Write ``sensitivity.csv`` (one row per point and receiver) and ``.json``.

    The JSON holds ``meta``, the same ``rows`` as the CSV and ``crossings`` (see
    ``crossings``): the interpolated 50 % and 90 % points, for scripts.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = out_dir / "sensitivity.csv", out_dir / "sensitivity.json"
    with csv_path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if row[k] is None else row[k] for k in _FIELDS})
    summary_json = {"meta": meta, "crossings": crossings(rows), "rows": rows}
    json_path.write_text(json.dumps(summary_json, indent=1))
    return csv_path, json_path


_STYLE = {
    "wmbus-sdr": {"marker": "o", "color": "tab:blue"},
    "rtl_433": {"marker": "s", "color": "tab:red"},
    "peer": {"marker": "s", "color": "tab:red"},
    "theory-ideal": {"color": "black", "linestyle": "-"},
    "theory-chip": {"color": "gray", "linestyle": "--"},
    "theory-coherent": {"color": "black", "linestyle": ":"},
}
_X_AXIS = {
    "ebn0": ("ebn0_db", "Eb/N0 (dB)", 1.0),
    "cfo": ("cfo_hz", "carrier offset (kHz)", 1e-3),
    "clock": ("chip_ppm", "meter chip-clock error (%)", 1e-4),
}


def plot_results(rows: list[dict], out_dir: Path) -> list[Path]:
    """One PNG per sweep (a panel per mode); matplotlib with the Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for sweep, (key, label, scale) in _X_AXIS.items():
        sweep_rows = [r for r in rows if r["sweep"] == sweep]
        names = list(dict.fromkeys(r["mode"] for r in sweep_rows))
        if not names:
            continue
        fig, axes = plt.subplots(
            1, len(names), figsize=(3.2 * len(names), 3.0), sharey=True, squeeze=False
        )
        for ax, name in zip(axes[0], names, strict=True):
            for receiver, style in _STYLE.items():
                pts = [
                    r
                    for r in sweep_rows
                    if r["mode"] == name and r["receiver"] == receiver
                ]
                if pts and receiver.startswith("theory-"):
                    _plot_theory(ax, name, receiver, pts, style)
                elif pts:
                    ax.plot(
                        [r[key] * scale for r in pts],
                        [100 * r["success"] for r in pts],
                        label=receiver,
                        markersize=3,
                        linewidth=1,
                        **style,
                    )
            ax.set_title(name, fontsize=9)
            ax.set_xlabel(label, fontsize=8)
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
        axes[0][0].set_ylabel("frames received (%)", fontsize=8)
        axes[0][-1].legend(fontsize=6, loc="lower right")
        fig.tight_layout()
        path = out_dir / f"sensitivity_{sweep}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def _plot_theory(ax, name: str, receiver: str, pts: list[dict], style: dict) -> None:
    """The closed form on a fine grid over the measured span (not only the points)."""
    grid = np.linspace(
        min(r["ebn0_db"] for r in pts), max(r["ebn0_db"] for r in pts), 200
    )
    code = _LINE_CODES[MODES[name].phy]
    value = frame_success(grid, frame_bits(name), code, receiver[len("theory-") :])
    ax.plot(grid, 100 * value, label=receiver, linewidth=1, **style)


def crossing_db(points: list[tuple[float, float]], level: float) -> float | None:
    """Eb/N0 where frame success first reaches ``level``, linear between points.

    Parameters
    ----------
    points : list of (float, float)
        (Eb/N0 in dB, frame success 0..1), in any order.
    level : float
        Frame success to find, 0..1.

    Returns
    -------
    float or None
        Eb/N0 in dB on the straight line between the first point at or above
        ``level`` and the point before it; that first point itself when it is the
        lowest one (the crossing lies at or below the grid); None when no point
        reaches ``level``.
    """
    points = sorted(points)
    for i, (ebn0_db, success) in enumerate(points):
        if success < level:
            continue
        if i == 0:
            return ebn0_db
        # the point before is below level, so the slope is positive
        low_db, low_success = points[i - 1]
        share = (level - low_success) / (success - low_success)
        return low_db + share * (ebn0_db - low_db)
    return None


_LEVELS = (0.5, 0.9)


def crossings(rows: list[dict]) -> list[dict]:
    """The 50 % and 90 % points of the Eb/N0 sweep, per mode and receiver.

    Returns
    -------
    list of dict
        ``mode``, ``receiver``, ``level`` (0.5 or 0.9), ``ebn0_db`` (``crossing_db``
        rounded to 0.001 dB, None when never reached) and ``bracketed`` (False when
        the lowest point already reaches the level: ``ebn0_db`` is then only an
        upper bound).
    """
    ebn0 = [r for r in rows if r["sweep"] == "ebn0" and r["success"] is not None]
    out = []
    for name in dict.fromkeys(r["mode"] for r in ebn0):
        for receiver in dict.fromkeys(r["receiver"] for r in ebn0):
            pts = [
                (r["ebn0_db"], r["success"])
                for r in ebn0
                if r["mode"] == name and r["receiver"] == receiver
            ]
            if not pts:
                continue
            for level in _LEVELS:
                value = crossing_db(pts, level)
                out.append(
                    {
                        "mode": name,
                        "receiver": receiver,
                        "level": level,
                        "ebn0_db": None if value is None else round(value, 3),
                        "bracketed": value is not None and value > min(pts)[0],
                    }
                )
    return out


def _crossing_text(entry: dict) -> str:
    if entry["ebn0_db"] is None:
        return "-"
    return ("" if entry["bracketed"] else "<=") + f"{entry['ebn0_db']:.1f}"


def summary(rows: list[dict]) -> str:
    """Text table: Eb/N0 of 50 % and 90 % success per mode and receiver."""
    lines = [
        "Eb/N0 (dB) of 50 % / 90 % frame success (linear between points; "
        "<= at the lowest point, - never reached):"
    ]
    found = crossings(rows)
    for name in dict.fromkeys(c["mode"] for c in found):
        parts = []
        for receiver in dict.fromkeys(c["receiver"] for c in found):
            pair = [
                _crossing_text(c)
                for c in found
                if c["mode"] == name and c["receiver"] == receiver
            ]
            if pair:
                parts.append(f"{receiver} {' / '.join(pair)}")
        lines.append(f"  {name:<8} " + ", ".join(parts))
    for sweep, (key, label, scale) in list(_X_AXIS.items())[1:]:
        ours = [r for r in rows if r["sweep"] == sweep and r["receiver"] == "wmbus-sdr"]
        for name in dict.fromkeys(r["mode"] for r in ours):
            pts = [r for r in ours if r["mode"] == name]
            span = _span_around_zero([(r[key] * scale, r["success"]) for r in pts])
            lines.append(
                f"  {sweep} {name:<8} >= 90 % over {label} {span} "
                f"(at {pts[0]['ebn0_db']:g} dB)"
            )
    return "\n".join(lines)


def _span_around_zero(points: list[tuple[float, float]], level: float = 0.9) -> str:
    """The contiguous run of points at or above ``level`` around the one nearest 0."""
    points = sorted(points)
    if not points:
        return "none"
    centre = min(range(len(points)), key=lambda i: abs(points[i][0]))
    if points[centre][1] < level:
        return "none"
    low = high = centre
    while low > 0 and points[low - 1][1] >= level:
        low -= 1
    while high + 1 < len(points) and points[high + 1][1] >= level:
        high += 1
    return f"{points[low][0]:g} .. {points[high][0]:g}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``wmbus bench sensitivity`` (shared with this script)."""
    parser.add_argument("--modes", help=f"from {', '.join(MODES)} ({DEFAULT_MODES})")
    parser.add_argument(
        "--points",
        help=f"Eb/N0 dB, start:stop:step or a,b,c "
        f"({DEFAULT_POINTS}; with --compare also {COMPARE_POINTS})",
    )
    parser.add_argument("--telegrams", type=int, default=100, help="per point (100)")
    parser.add_argument(
        "--cfo", default=DEFAULT_CFO, help="offsets, Hz; 'none' to skip"
    )
    parser.add_argument(
        "--clock", default=DEFAULT_CLOCK, help="chip-clock errors, ppm; 'none' to skip"
    )
    parser.add_argument(
        "--sweep-ebn0",
        type=float,
        default=14.0,
        help="Eb/N0 of the offset and clock sweeps, dB (14)",
    )
    parser.add_argument("--compare", metavar="rtl_433|CMD", help="peer decoder")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("bench-results"),
        help="directory for CSV, JSON and PNG (bench-results)",
    )
    parser.add_argument("--jobs", type=int, default=0, help="processes (all cores)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-plots", action="store_true")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: few points and telegrams (~30 s)",
    )


def _trials_from_args(args: argparse.Namespace) -> tuple[list[Trial], list[float]]:
    import os

    names = parse_modes(args.modes, DEFAULT_MODES)
    if args.quick:
        names = names[:2] if args.modes is None else names
        points, cfo, clock, count = [6.0, 10.0, 14.0], [-60e3, 0, 60e3], [0.0], 20
        points += [30.0] if args.compare else []
    else:
        points = parse_points(args.points or DEFAULT_POINTS)
        if args.compare and args.points is None:
            points += parse_points(COMPARE_POINTS)
        cfo = [] if args.cfo == "none" else parse_points(args.cfo)
        clock = [] if args.clock == "none" else parse_points(args.clock)
        count = args.telegrams
    if count < 1:
        raise ValueError("--telegrams must be at least 1")
    if args.compare == "rtl_433" and shutil.which("rtl_433") is None:
        raise FileNotFoundError("rtl_433 is not on PATH (Debian: apt install rtl-433)")
    trials = plan_trials(
        names,
        points,
        cfo,
        clock,
        count=count,
        sweep_ebn0_db=args.sweep_ebn0,
        seed=args.seed,
        compare=args.compare,
    )
    if not args.jobs:
        args.jobs = (
            len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else os.cpu_count() or 1
        )
    return trials, points


def run_from_args(args: argparse.Namespace) -> tuple[list[dict], list[Path]]:
    """Run the sweeps the options ask for; write the table (and plots)."""
    trials, points = _trials_from_args(args)
    names = list(dict.fromkeys(t.name for t in trials))
    start = time.perf_counter()
    rows = run_sensitivity(trials, args.jobs) + theory_rows(names, points)
    meta = {
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "telegram_bytes": TELEGRAM_BYTES,
        "telegrams_per_point": trials[0].count,
        "seed": args.seed,
        "sweep_ebn0_db": args.sweep_ebn0,
        "compare": args.compare,
        "frame_bits": {n: frame_bits(n) for n in names},
        "machine": f"{platform.machine()} {platform.processor()} "
        f"{platform.python_version()}",
        "seconds": round(time.perf_counter() - start, 1),
    }
    paths = list(write_table(rows, meta, args.out))
    if not args.no_plots:
        paths += plot_results(rows, args.out)
    return rows, paths


def main(argv: list[str] | None = None) -> int:
    """Script entry point: run, write the files, print the summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    rows, paths = run_from_args(parser.parse_args(argv))
    sys.stdout.write(summary(rows) + "\nwrote " + ", ".join(map(str, paths)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
