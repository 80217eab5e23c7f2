"""Receiver throughput on one core: a cached multi-mode recording, decoded end to end.

What is measured (``wmbus bench throughput``; runnable as this script too)::

    recording   cu8 file, NAME_<centre>M_<rate>k.cu8, made once by our transmitter
                (dsp.modulator) and cached with a manifest of the telegrams sent:
                one telegram per slot (0.25 s), modes cycling, each at a random
                Eb/N0 (10..40 dB), carrier offset (+-20 kHz) and length (30..80 B),
                white noise over the whole band at 0.045 of full scale (rms)
    ours        a child process pinned to one core reads the file
                (sdr.source_file.FileSource) and feeds dsp.receiver.Receiver in
                65536-sample blocks; wall and CPU seconds, peak RSS (VmHWM)
    stages      the same child streams the file again per stage: the file alone
                (read + cu8 conversion), the channelizer alone (dsp.channel, every
                channel), and one Receiver per chain (S, T, C, C2, each with its
                own channel filter); the receiver has no per-stage timers, so a
                demodulator's time is "its receiver pass - file pass - its share"
                and is reported as measured, not split further
    stack       stack.telegram.decode_telegram on the frames found, in this process
    peer        rtl_433 -R 104 -R 105 (or any command) on the same file, one core

Every figure is the median of ``repeat`` runs after a warm-up (numba compiles or
loads its cache once).  A child is started by a small launcher process so that its
peak RSS is its own: a forked child inherits its parent's high-water mark.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dsp.convert import iq_to_bytes  # noqa: E402
from dsp.kernels import MODE_NAMES  # noqa: E402
from dsp.modes import get_phy  # noqa: E402
from dsp.modulator import compose, frame_burst  # noqa: E402
from sdr.filename import build_filename  # noqa: E402
from stack.encode import encode_telegram  # noqa: E402
from stack.frame import add_crcs  # noqa: E402
from stack.records import build_records, make_record  # noqa: E402

__all__ = [
    "BenchMode",
    "MODES",
    "Recording",
    "SentTelegram",
    "PeerRun",
    "bench_telegram",
    "parse_modes",
    "cached_recording",
    "make_recording",
    "run_peer",
    "peer_commands",
    "add_arguments",
    "run_from_args",
    "count_found",
    "run_throughput",
    "format_throughput",
    "main",
]

# Bump when the recording's content changes, so that old caches are not reused.
_RECORDING_VERSION = 1
BLOCK_SAMPLES = 1 << 16
SLOT_S = 0.25  # one telegram per slot
EBN0_RANGE_DB = (10.0, 40.0)  # per telegram, uniform: weak to loud meters
CFO_SPAN_HZ = 20_000.0  # meter crystal error, uniform +-
LENGTH_RANGE = (30, 80)  # no-CRC bytes, uniform
NOISE_RMS_FS = 0.045  # noise rms, share of cu8 full scale: C at 40 dB still fits
_DEFAULT_CACHE = Path.home() / ".cache" / "wmbus-sdr" / "bench"
# Header (10) + short TPL (5) + two records (12) + DIF 0x0F: the smallest telegram.
_MIN_BENCH_LENGTH = 28


@dataclass(frozen=True, slots=True)
class BenchMode:
    """A mode and frame format as the benchmarks name them.

    Attributes
    ----------
    mode, direction, frame_format : str
        As ``sdr.transmit.TxFrame`` takes them.
    phy : str
        The receiver chain that hears it (``dsp.receiver.PHYS``).
    peer_detector : str or None
        rtl_433 ``-Y`` detector that decodes it ("" for the default); None when
        rtl_433 has no decoder for it (see tests/test_rtl433_oracle.py).
    """

    mode: str
    direction: str
    frame_format: str
    phy: str
    peer_detector: str | None


MODES: dict[str, BenchMode] = {
    "S1": BenchMode("S1", "meter", "A", "S", ""),
    "S1-m": BenchMode("S1-m", "meter", "A", "S", ""),
    "T1": BenchMode("T1", "meter", "A", "T", "minmax"),
    "C1A": BenchMode("C1", "meter", "A", "C", "minmax"),
    "C1B": BenchMode("C1", "meter", "B", "C", "minmax"),
    "C2-down": BenchMode("C2", "other", "A", "C2", None),
    # T2 other -> meter is S1-m on air (868.3 MHz Manchester, short preamble): our S
    # chain hears it, and so does rtl_433's default detector (it cannot tell the
    # direction).  Last in the table: bench_sensitivity seeds a point's noise by a
    # mode's place here, so appending keeps every other mode's figures reproducible.
    "T2-down": BenchMode("T2", "other", "A", "S", ""),
}
_ALIASES = {"C1": "C1A", "C2": "C2-down"}


def parse_modes(text: str | None, default: str) -> list[str]:
    """Benchmark mode names from ``"S1,T1,C1A"`` (``C1`` means ``C1A``).

    Raises
    ------
    ValueError
        For an unknown name; the message lists the known ones.
    """
    names = [n.strip() for n in (text or default).split(",") if n.strip()]
    names = [_ALIASES.get(n, n) for n in names]
    unknown = [n for n in names if n not in MODES]
    if unknown or not names:
        raise ValueError(
            f"unknown mode(s) {unknown or text!r}; choose from {', '.join(MODES)}"
        )
    return list(dict.fromkeys(names))


def bench_telegram(index: int, length: int, seed: int = 0) -> bytes:
    """A made-up plain telegram (no-CRC form) with a unique 8-digit meter id.

    Manufacturer "BEN", water meter, CI 0x7A, a volume and a flow-temperature record,
    then DIF 0x0F and seeded filler up to ``length`` bytes.  Ids start with 1..9, so
    rtl_433 prints them as the same 8 digits.

    Raises
    ------
    ValueError
        ``length`` below 28 or above 256.
    """
    if not _MIN_BENCH_LENGTH <= length <= 256:
        raise ValueError(f"length must be {_MIN_BENCH_LENGTH}..256, got {length}")
    meter_id = f"{10_000_000 + (index * 7_919 + seed * 104_729) % 90_000_000:08d}"
    records = [
        make_record("volume", index % 100_000, unit="m3"),
        make_record("flow_temperature", 20 + index % 40),
    ]
    rng = np.random.default_rng([seed, index])
    filler = rng.integers(1, 256, length - _MIN_BENCH_LENGTH, dtype=np.uint8)
    payload = build_records(records) + b"\x0f" + filler.tobytes()
    return encode_telegram(
        manufacturer="BEN",
        meter_id=meter_id,
        version=1,
        device_type=0x07,
        access_number=index % 256,
        payload=payload,
    )


@dataclass(frozen=True, slots=True)
class SentTelegram:
    """One telegram in a recording: its benchmark mode, id, on-air bytes, level."""

    name: str
    meter_id: str
    frame_hex: str
    start_s: float
    ebn0_db: float


@dataclass(frozen=True, slots=True)
class Recording:
    """A cu8 recording and what was sent in it."""

    path: Path
    sample_rate_hz: float
    center_freq_hz: float
    n_samples: int
    sent: tuple[SentTelegram, ...]


def _second_of_bursts(
    second: int, names: list[str], rate_hz: float, rng: np.random.Generator, seed: int
) -> tuple[list, list[SentTelegram]]:
    bursts, sent = [], []
    per_second = int(round(1.0 / SLOT_S))
    for slot in range(per_second):
        index = second * per_second + slot
        bench = MODES[names[index % len(names)]]
        telegram = bench_telegram(index, int(rng.integers(*LENGTH_RANGE)), seed)
        frame = add_crcs(telegram, bench.frame_format)
        ebn0_db = float(rng.uniform(*EBN0_RANGE_DB))
        # unit noise variance: burst power = Eb/N0 * bit rate / sample rate
        bit_rate = get_phy(bench.mode, bench.direction).bit_rate_bps
        gain_db = ebn0_db + 10 * np.log10(bit_rate / rate_hz)
        start_s = slot * SLOT_S + float(rng.uniform(0.005, 0.1))
        bursts.append(
            frame_burst(
                frame,
                bench.mode,
                bench.direction,
                bench.frame_format,
                sample_rate_hz=rate_hz,
                start_sample=int(start_s * rate_hz),
                carrier_offset_hz=float(rng.uniform(-CFO_SPAN_HZ, CFO_SPAN_HZ)),
                gain_db=float(gain_db),
            )
        )
        sent.append(
            SentTelegram(
                names[index % len(names)],
                telegram[4:8][::-1].hex(),
                frame.hex(),
                second + start_s,
                round(ebn0_db, 2),
            )
        )
    return bursts, sent


def make_recording(
    path: Path,
    seconds: int,
    sample_rate_hz: float,
    center_freq_hz: float,
    names: list[str],
    seed: int = 1,
) -> Recording:
    """Write the benchmark recording to ``path`` (cu8) one second at a time."""
    rng = np.random.default_rng(seed)
    per_second = int(round(sample_rate_hz))
    sent: list[SentTelegram] = []
    with path.open("wb") as fh:
        for second in range(seconds):
            bursts, more = _second_of_bursts(second, names, sample_rate_hz, rng, seed)
            sent += more
            iq = compose(bursts, center_freq_hz, sample_rate_hz, per_second)
            noise = rng.normal(0.0, np.sqrt(0.5), (per_second, 2)).astype(np.float32)
            iq = (iq + noise.view(np.complex64)[:, 0]) * np.float32(NOISE_RMS_FS)
            fh.write(iq_to_bytes(iq, "cu8"))
    return Recording(
        path, sample_rate_hz, center_freq_hz, seconds * per_second, tuple(sent)
    )


def cached_recording(
    cache_dir: Path | None,
    seconds: int,
    sample_rate_hz: float,
    center_freq_hz: float,
    names: list[str],
    seed: int = 1,
) -> Recording:
    """The recording for these settings, from the cache or made and cached now."""
    key = json.dumps(
        [_RECORDING_VERSION, seconds, sample_rate_hz, center_freq_hz, names, seed]
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    directory = Path(cache_dir or _DEFAULT_CACHE)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / build_filename(
        f"bench_{digest}", center_freq_hz, sample_rate_hz, "cu8"
    )
    manifest = path.with_suffix(".json")
    if manifest.exists() and path.exists():
        data = json.loads(manifest.read_text())
        return Recording(
            path,
            sample_rate_hz,
            center_freq_hz,
            data["n_samples"],
            tuple(SentTelegram(**s) for s in data["sent"]),
        )
    rec = make_recording(path, seconds, sample_rate_hz, center_freq_hz, names, seed)
    manifest.write_text(
        json.dumps({"n_samples": rec.n_samples, "sent": [asdict(s) for s in rec.sent]})
    )
    return rec


# --- running a process on one core and measuring it ----------------------------------

# Runs argv[3:] pinned to CPU argv[1], stdout to argv[2]; writes wall/CPU/RSS JSON
# to stderr's last line.  Small, so that its own high-water mark does not dominate.
_LAUNCHER = """
import json, os, subprocess, sys, time
cpu = int(sys.argv[1])
if cpu >= 0 and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {cpu})
with open(sys.argv[2], "wb") as out:
    t0 = time.perf_counter()
    proc = subprocess.Popen(sys.argv[3:], stdout=out)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
print(json.dumps({"wall_s": wall, "cpu_s": usage.ru_utime + usage.ru_stime,
                  "rss_mb": usage.ru_maxrss / 1024,
                  "status": os.waitstatus_to_exitcode(status)}), file=sys.stderr)
"""


def _pick_cpu() -> int:
    """The last CPU this process may run on (-1 where affinity is not available)."""
    if not hasattr(os, "sched_getaffinity"):
        return -1
    return max(os.sched_getaffinity(0))


@dataclass(frozen=True, slots=True)
class _Launched:
    stdout: str
    wall_s: float
    cpu_s: float
    rss_mb: float


def _launch(cmd: list[str], env: dict[str, str] | None = None) -> _Launched:
    """Run ``cmd`` on one core through the launcher; its output and resource use."""
    with tempfile.TemporaryDirectory() as tmp:
        out_path = Path(tmp) / "stdout"
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, str(_pick_cpu()), str(out_path), *cmd],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        lines = done.stderr.strip().splitlines()
        stats = json.loads(lines[-1]) if lines else {"status": done.returncode}
        if done.returncode or stats.get("status"):
            raise RuntimeError(f"{cmd[0]} failed: {done.stderr.strip()[-400:]}")
        return _Launched(
            out_path.read_text(errors="replace"),
            stats["wall_s"],
            stats["cpu_s"],
            stats["rss_mb"],
        )


# --- our receiver, in a child process ------------------------------------------------

# The child streams the file per pass; it imports only what the pass needs.
_CHILD = r"""
import json, sys, time
t_start = time.perf_counter()
spec = json.loads(sys.argv[1])
import numpy as np
from dsp.receiver import Receiver
from sdr.source_file import FileSource


def peak_rss_mb():
    # VmHWM belongs to this image's memory map, reset by exec (ru_maxrss is not)
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stream(consume, limit=None):
    src = FileSource(spec["path"], sample_rate_hz=spec["fs"], center_freq_hz=spec["fc"])
    n = 0
    try:
        while limit is None or n < limit:
            iq = src.read(spec["block"])
            if iq.size == 0:
                break
            n += iq.size
            consume(iq)
    finally:
        src.close()
    return n


def receiver(phys, limit=None):
    rx = Receiver(spec["fs"], spec["fc"], phys=phys)
    frames = []
    n = stream(lambda iq: frames.extend(rx.feed(iq)), limit)
    frames += rx.flush()
    return n, frames


def one_pass(stage):
    if stage == "file":
        return stream(lambda iq: None), []
    if stage == "channelizer":
        from dsp.channel import Channelizer
        from dsp.channel_plan import plan_channels
        chan = Channelizer(spec["fs"], plan_channels(spec["fs"], spec["fc"]))
        return stream(chan.process), []
    return receiver(None if stage == "receiver" else [stage.split(":")[1]])


receiver(None, limit=int(2 * spec["fs"]))  # warm-up: every kernel compiled or loaded
startup = time.perf_counter() - t_start
result = {"startup_s": startup, "passes": {}, "frames": None}
for stage in spec["stages"]:
    runs = []
    for _ in range(spec["repeat"]):
        t0, c0 = time.perf_counter(), time.process_time()
        n, frames = one_pass(stage)
        runs.append({"wall_s": time.perf_counter() - t0,
                     "cpu_s": time.process_time() - c0, "samples": n})
        if stage == "receiver" and result["frames"] is None:
            result["frames"] = [[f.data.hex(), f.frame_format, bool(f.crc_ok)]
                                for f in frames]
    result["passes"][stage] = runs
result["rss_mb"] = peak_rss_mb()
from dsp import kernels
result["kernels"] = kernels.MODE
print(json.dumps(result))
"""


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(ROOT / ".numba_cache"))
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # one core: no BLAS or numba thread pool competing for it
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    return env


def _run_child(
    rec: Recording, stages: list[str], repeat: int
) -> tuple[dict, _Launched]:
    spec = {
        "path": str(rec.path),
        "fs": rec.sample_rate_hz,
        "fc": rec.center_freq_hz,
        "block": BLOCK_SAMPLES,
        "stages": stages,
        "repeat": repeat,
    }
    launched = _launch([sys.executable, "-c", _CHILD, json.dumps(spec)], _child_env())
    return json.loads(launched.stdout.strip().splitlines()[-1]), launched


def _median(runs: list[dict], key: str) -> float:
    return float(statistics.median(r[key] for r in runs))


# --- found against sent --------------------------------------------------------------


def _per_mode(rec: Recording, found: set[int], names: list[str]) -> dict[str, int]:
    counts = dict.fromkeys(names, 0)
    for index in found:
        counts[rec.sent[index].name] += 1
    return counts


def _ours_found(rec: Recording, frames: list[list]) -> tuple[set[int], int]:
    """Indices of sent telegrams received bit-exact with good CRCs; other frames."""
    by_hex = {s.frame_hex: i for i, s in enumerate(rec.sent)}
    found = {by_hex[h] for h, _, ok in frames if ok and h in by_hex}
    extra = sum(1 for h, _, ok in frames if ok and h not in by_hex)
    return found, extra


def count_found(text: str, meter_ids: list[str]) -> set[int]:
    """Indices of the ``meter_ids`` a peer's output mentions.

    A telegram counts as found when its 8-digit id appears as a word (rtl_433 prints
    ``"id" : 12345678``) or its on-air id bytes appear in a hex dump.  Benchmark
    telegrams have distinct ids (``bench_telegram``).
    """
    import re

    lowered = text.lower()
    found = set()
    for index, meter_id in enumerate(meter_ids):
        wire_hex = bytes.fromhex(meter_id)[::-1].hex()
        if re.search(rf"\b{meter_id}\b", text) or wire_hex in lowered:
            found.add(index)
    return found


# --- the peer ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PeerRun:
    """A peer decoder's run on the recording: times are medians of the repeats."""

    label: str
    wall_s: float
    cpu_s: float
    rss_mb: float
    found: tuple[int, ...]


def _rtl433_commands(path: Path, names: list[str]) -> list[tuple[str, list[str]]]:
    exe = shutil.which("rtl_433")
    if exe is None:
        raise FileNotFoundError("rtl_433 is not on PATH (Debian: apt install rtl-433)")
    detectors = sorted({MODES[n].peer_detector for n in names} - {None})
    commands = []
    for det in detectors:
        cmd = [exe, "-c", "/dev/null", "-R", "104", "-R", "105", "-F", "json"]
        cmd += ["-Y", det] if det else []
        label = "rtl_433" + (f" -Y {det}" if det else "")
        commands.append((label, [*cmd, "-r", str(path)]))
    return commands


def peer_commands(
    peer: str, path: Path, names: list[str]
) -> list[tuple[str, list[str]]]:
    """(label, argv) of each run of ``peer`` on ``path`` for these modes.

    ``peer`` is "rtl_433" or any command line, ``{path}`` standing for the file
    (appended when absent).  rtl_433 runs once per detector its modes need (T and C
    want ``-Y minmax``, S the default detector: tests/test_rtl433_oracle.py).

    Raises
    ------
    FileNotFoundError
        rtl_433 asked for but not installed.
    ValueError
        An empty command.
    """
    if peer == "rtl_433":
        return _rtl433_commands(path, names)
    words = shlex.split(peer)
    if not words:
        raise ValueError("--compare needs rtl_433 or a command")
    if not any("{path}" in w for w in words):
        words.append("{path}")
    return [(peer, [w.replace("{path}", str(path)) for w in words])]


def run_peer(rec: Recording, peer: str, names: list[str], repeat: int) -> list[PeerRun]:
    """Run ``peer`` (see ``peer_commands``) on the recording, on one core."""
    commands = peer_commands(peer, rec.path, names)
    runs = []
    for label, cmd in commands:
        launched = [_launch(cmd) for _ in range(repeat)]
        found = count_found(launched[0].stdout, [s.meter_id for s in rec.sent])
        runs.append(
            PeerRun(
                label,
                float(statistics.median(r.wall_s for r in launched)),
                float(statistics.median(r.cpu_s for r in launched)),
                max(r.rss_mb for r in launched),
                tuple(sorted(found)),
            )
        )
    return runs


# --- stack stage and the whole benchmark ---------------------------------------------


def _time_stack(frames: list[tuple[bytes, str]], min_s: float = 0.3) -> float:
    """Seconds per telegram of ``stack.telegram.decode_telegram``."""
    from stack.telegram import decode_telegram

    if not frames:
        return 0.0
    done, start = 0, time.perf_counter()
    while True:
        for data, fmt in frames:
            decode_telegram(data, crc=fmt)
        done += len(frames)
        elapsed = time.perf_counter() - start
        if elapsed >= min_s:
            return elapsed / done


def _stage_rows(result: dict, duration_s: float) -> list[dict]:
    passes = result["passes"]
    file_s = _median(passes["file"], "wall_s") if "file" in passes else 0.0
    rows = []
    notes = {
        "file": "read + cu8 -> complex64 (sdr.source_file)",
        "channelizer": "every channel filter (dsp.channel), file pass subtracted",
        "receiver": "the whole receiver, file pass subtracted",
    }
    for stage, runs in passes.items():
        wall = _median(runs, "wall_s") - (file_s if stage != "file" else 0.0)
        note = notes.get(
            stage,
            f"receiver with chain {stage[3:]} only (its own "
            "channel filter included), file pass subtracted",
        )
        rows.append(
            {
                "stage": stage,
                "seconds": round(wall, 4),
                "x_real_time": round(duration_s / wall, 1) if wall > 0 else None,
                "note": note,
            }
        )
    return rows


def run_throughput(
    *,
    sample_rate_hz: float = 2.4e6,
    center_freq_hz: float = 868.95e6,
    seconds: int = 60,
    names: list[str] | None = None,
    repeat: int = 3,
    compare: str | None = None,
    cache_dir: Path | None = None,
    stages: bool = True,
    seed: int = 1,
) -> dict:
    """Run the throughput benchmark; return every figure as a JSON-ready dict."""
    from dsp.receiver import Receiver

    names = names or parse_modes(None, _DEFAULT_MODES)
    heard = {phy for phy, _ in Receiver(sample_rate_hz, center_freq_hz).channels}
    missing = [n for n in names if MODES[n].phy not in heard]
    if missing:
        raise ValueError(
            f"modes {missing} are outside the band of {sample_rate_hz:g}"
            f" S/s at {center_freq_hz:g} Hz; use 2.4M at 868.95M"
        )
    rec = cached_recording(
        cache_dir, seconds, sample_rate_hz, center_freq_hz, names, seed
    )
    full, launched = _run_child(rec, ["receiver"], repeat)
    found, extra = _ours_found(rec, full["frames"])
    wall = _median(full["passes"]["receiver"], "wall_s")
    cpu = _median(full["passes"]["receiver"], "cpu_s")
    frames = [(bytes.fromhex(h), fmt) for h, fmt, ok in full["frames"] if ok]
    per_tel = _time_stack(frames)
    out = {
        "recording": {
            "path": str(rec.path),
            "seconds": seconds,
            "sample_rate_hz": sample_rate_hz,
            "center_freq_hz": center_freq_hz,
            "sent": len(rec.sent),
            "sent_per_mode": _per_mode(rec, set(range(len(rec.sent))), names),
        },
        "ours": {
            "wall_s": wall,
            "cpu_s": cpu,
            "rss_mb": full["rss_mb"],
            "startup_s": full["startup_s"],
            "kernels": full["kernels"],
            "samples_per_s": rec.n_samples / wall,
            "x_real_time": seconds / wall,
            "found": len(found),
            "found_per_mode": _per_mode(rec, found, names),
            "extra_frames": extra,
        },
        "stack": {"us_per_telegram": per_tel * 1e6, "seconds": per_tel * len(frames)},
        "repeat": repeat,
        "stages": [],
        "peers": [],
    }
    if stages:
        chains = [f"rx:{p}" for p in ("S", "T", "C", "C2") if p in heard]
        staged, _ = _run_child(
            rec, ["file", "channelizer", *chains, "receiver"], repeat
        )
        out["stages"] = _stage_rows(staged, seconds)
    if compare:
        out["peers"] = _peer_rows(
            rec, run_peer(rec, compare, names, repeat), wall, found, names, compare
        )
    return out


def _peer_rows(
    rec: Recording,
    runs: list[PeerRun],
    our_wall_s: float,
    our_found: set[int],
    names: list[str],
    peer: str,
) -> list[dict]:
    """One row per peer run, plus their union when a peer needed several runs."""
    if len(runs) > 1:
        union = sorted(set().union(*(r.found for r in runs)))
        runs = [
            *runs,
            PeerRun(
                f"{peer} (all runs)",
                sum(r.wall_s for r in runs),
                sum(r.cpu_s for r in runs),
                max(r.rss_mb for r in runs),
                tuple(union),
            ),
        ]
    # telegrams of modes the peer has a decoder for (rtl_433: not the C2 downlink)
    usable = {
        n for n in names if peer != "rtl_433" or MODES[n].peer_detector is not None
    }
    comparable = sum(1 for i in our_found if rec.sent[i].name in usable)
    rows = []
    for run in runs:
        row = asdict(run)
        row["found_per_mode"] = _per_mode(rec, set(run.found), names)
        row["found"] = len(run.found)
        row["speed_ratio"] = run.wall_s / our_wall_s  # > 1: ours is faster
        row["ours_found_comparable"] = comparable
        row["sent_comparable"] = sum(1 for s in rec.sent if s.name in usable)
        rows.append(row)
    return rows


_DEFAULT_MODES = "S1,S1-m,T1,C1A,C1B,C2-down"


def format_throughput(result: dict) -> str:
    """The human-readable report of ``run_throughput``'s result."""
    rec, ours = result["recording"], result["ours"]
    lines = [
        f"recording: {rec['seconds']} s at {rec['sample_rate_hz'] / 1e6:g} MS/s, "
        f"centre {rec['center_freq_hz'] / 1e6:g} MHz, {rec['sent']} telegrams sent "
        f"({_fmt_counts(rec['sent_per_mode'])})",
        f"wmbus-sdr (one core, median of {result['repeat']}): "
        f"{ours['samples_per_s'] / 1e6:.2f} MS/s = {ours['x_real_time']:.1f}x real "
        f"time, {ours['wall_s']:.2f} s wall, {ours['cpu_s']:.2f} s CPU, peak RSS "
        f"{ours['rss_mb']:.0f} MiB, start-up {ours['startup_s']:.1f} s, kernels "
        f"{MODE_NAMES.get(ours.get('kernels', ''), '?')}",
        f"  found {ours['found']}/{rec['sent']} ({_fmt_counts(ours['found_per_mode'])})"
        f", {ours['extra_frames']} other frames",
        f"  stack decode: {result['stack']['us_per_telegram']:.0f} us per telegram, "
        f"{result['stack']['seconds']:.3f} s for the recording",
    ]
    for row in result["stages"]:
        rt = f"{row['x_real_time']:.1f}x real time" if row["x_real_time"] else "-"
        lines.append(
            f"  stage {row['stage']:<12} {row['seconds']:8.2f} s  {rt:>18}"
            f"  ({row['note']})"
        )
    for peer in result["peers"]:
        lines.append(
            f"{peer['label']}: {peer['wall_s']:.2f} s wall, {peer['cpu_s']:.2f} s CPU,"
            f" peak RSS {peer['rss_mb']:.0f} MiB, found {peer['found']}/{rec['sent']} "
            f"({_fmt_counts(peer['found_per_mode'])}); time {peer['label']} / ours = "
            f"{peer['speed_ratio']:.2f}; on the {peer['sent_comparable']} telegrams "
            f"of modes it decodes, ours {peer['ours_found_comparable']} / theirs "
            f"{peer['found']} = {_ratio(peer['ours_found_comparable'], peer['found'])}"
        )
    return "\n".join(lines)


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in counts.items())


def _ratio(a: int, b: int) -> str:
    return f"{a / b:.2f}" if b else "inf" if a else "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``wmbus bench throughput`` (shared with this script)."""
    parser.add_argument("--rate", default="2.4M", help="sample rate (default 2.4M)")
    parser.add_argument("--center", default="868.95M", help="centre (868.95M)")
    parser.add_argument("--seconds", type=int, default=60, help="recording length")
    parser.add_argument(
        "--modes", default=None, help=f"comma-separated, from {', '.join(MODES)}"
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per median")
    parser.add_argument("--compare", metavar="rtl_433|CMD", help="peer decoder")
    parser.add_argument("--cache", type=Path, help=f"cache dir ({_DEFAULT_CACHE})")
    parser.add_argument("--no-stages", action="store_true", help="skip stage passes")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 5 s, one repeat"
    )
    parser.add_argument("--out", type=Path, help="also write throughput.json here")


def run_from_args(args: argparse.Namespace, parse_frequency) -> dict:
    """Run with parsed options; ``parse_frequency`` turns "2.4M" into Hz."""
    names = parse_modes(args.modes, _DEFAULT_MODES)
    seconds, repeat = (5, 1) if args.quick else (args.seconds, args.repeat)
    if seconds < 1 or repeat < 1:
        raise ValueError("--seconds and --repeat must be at least 1")
    result = run_throughput(
        sample_rate_hz=parse_frequency(args.rate),
        center_freq_hz=parse_frequency(args.center),
        seconds=seconds,
        names=names,
        repeat=repeat,
        compare=args.compare,
        cache_dir=args.cache,
        stages=not args.no_stages,
    )
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "throughput.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> int:
    """Script entry point: run and print the report."""
    from sdr.units import parse_frequency

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    sys.stdout.write(format_throughput(run_from_args(args, parse_frequency)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
