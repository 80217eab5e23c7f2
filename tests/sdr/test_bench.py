"""The benchmark machinery on tiny inputs: theory values, tables, peers, the CLI.

Speed itself is never asserted here (tests do not time themselves); these tests
check that the benchmarks count, compute and write what they claim.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import bench_sensitivity as sens
from benchmarks import bench_throughput as thr
from benchmarks.theory import (
    bit_error_coherent,
    bit_error_noncoherent,
    ebn0_for_success,
    frame_success,
)
from sdr.cli import main as wmbus_main
from stack.telegram import decode_telegram

# --- theory against closed forms worked by hand ---------------------------------------


def test_noncoherent_bit_error_at_10_db():
    # Eb/N0 = 10 dB = 10: p = 0.5 e^-5 = 0.5 * 0.006737947 = 0.0033689735
    assert float(bit_error_noncoherent(10.0)) == pytest.approx(0.0033689735, rel=1e-8)
    # 0 dB: 0.5 e^-0.5 = 0.5 * 0.60653066 = 0.30326533
    assert float(bit_error_noncoherent(0.0)) == pytest.approx(0.30326533, rel=1e-7)


def test_coherent_bit_error_at_10_db():
    # Q(sqrt(10)) = Q(3.1623) = 7.827e-4 (normal table)
    assert float(bit_error_coherent(10.0)) == pytest.approx(7.827e-4, rel=1e-3)


def test_frame_success_of_one_byte():
    # 8 bits at p = 0.0033689735: 1 - 8p + 28p^2 - 56p^3 = 0.97336388
    assert float(frame_success(10.0, 8, "nrz")) == pytest.approx(0.9733639, rel=1e-6)
    # NRZ: one chip per bit, so deciding chips alone changes nothing
    assert float(frame_success(10.0, 8, "nrz", "chip")) == pytest.approx(0.9733639)


def test_manchester_hard_chips_cost_3_db():
    # Ec = Eb / 2 = 5 at 10 dB: pc = 0.5 e^-2.5 = 0.0410425, 16 chips must be right
    assert float(frame_success(10.0, 8, "manchester", "chip")) == pytest.approx(
        (1 - 0.0410425) ** 16, rel=1e-6
    )
    # ... which is the per-bit ideal curve 3 dB lower, over twice the decisions
    assert float(frame_success(10.0, 8, "manchester", "chip")) == pytest.approx(
        float(frame_success(10.0 - 10 * math.log10(2), 16, "nrz")), rel=1e-9
    )


def test_3of6_hard_chips_use_two_thirds_of_eb():
    # 12 bits -> 18 chips of Ec = 2/3 Eb
    ec = 10.0 * 2 / 3
    assert float(frame_success(10.0, 12, "3of6", "chip")) == pytest.approx(
        (1 - 0.5 * math.exp(-ec / 2)) ** 18, rel=1e-9
    )


@settings(max_examples=50, deadline=None)
@given(
    low=st.floats(-5, 30),
    step=st.floats(0.01, 5),
    n_bits=st.integers(1, 2000),
    code=st.sampled_from(["nrz", "3of6", "manchester"]),
)
def test_success_grows_with_ebn0_and_orders_the_detectors(low, step, n_bits, code):
    a = float(frame_success(low, n_bits, code))
    b = float(frame_success(low + step, n_bits, code))
    assert 0.0 <= a <= b <= 1.0
    assert float(frame_success(low, n_bits, code, "chip")) <= a + 1e-12
    assert a <= float(frame_success(low, n_bits, code, "coherent")) + 1e-12


@pytest.mark.parametrize("target", [0.1, 0.5, 0.9, 0.99])
def test_ebn0_for_success_inverts_the_curve(target):
    ebn0 = ebn0_for_success(target, 464, "nrz")
    assert float(frame_success(ebn0, 464, "nrz")) == pytest.approx(target, abs=1e-5)


def test_theory_rejects_nonsense():
    with pytest.raises(ValueError, match="line code"):
        frame_success(10.0, 8, "fm0")
    with pytest.raises(ValueError, match="detector"):
        frame_success(10.0, 8, "nrz", "psychic")
    with pytest.raises(ValueError, match="target"):
        ebn0_for_success(1.0, 8, "nrz")


# --- telegrams, modes, points ---------------------------------------------------------


def test_bench_telegrams_decode_and_have_distinct_ids():
    telegrams = [thr.bench_telegram(k, 30 + k, seed=3) for k in range(20)]
    assert [len(t) for t in telegrams] == [30 + k for k in range(20)]
    assert all(t[0] == len(t) - 1 for t in telegrams)
    assert len({t[4:8] for t in telegrams}) == 20
    telegram = decode_telegram(telegrams[5], crc="none")
    assert telegram.error is None
    assert telegram.records[0].value == 5


def test_parse_modes_and_points():
    assert thr.parse_modes("C1,T1,C1A", "S1") == ["C1A", "T1"]
    assert thr.parse_modes("T2-down,S1", "S1") == ["T2-down", "S1"]
    assert thr.parse_modes(None, "S1,C2") == ["S1", "C2-down"]
    with pytest.raises(ValueError, match="choose from"):
        thr.parse_modes("Q9", "S1")
    assert sens.parse_points("2:4:1") == [2.0, 3.0, 4.0]
    assert sens.parse_points("-100k:100k:100k") == [-100e3, 0.0, 100e3]
    assert sens.parse_points("1, -3,5") == [1.0, -3.0, 5.0]
    for bad in ("1:2", "1:2:0", "x", ""):
        with pytest.raises(ValueError):
            sens.parse_points(bad)


# --- sensitivity: one tiny trial, the table and the plots ----------------------------


def test_a_trial_counts_frames_sent_and_received():
    loud = sens.Trial("ebn0", "T1", 30.0, None, 0.0, 3, seed=9)
    quiet = sens.Trial("ebn0", "T1", -6.0, None, 0.0, 3, seed=9)
    assert sens.run_trial(loud)["rows"][0]["found"] == 3
    row = sens.run_trial(quiet)["rows"][0]
    assert (row["receiver"], row["sent"], row["found"], row["success"]) == (
        "wmbus-sdr",
        3,
        0,
        0.0,
    )


def test_t2_downlink_is_sent_on_868_3_and_received(tmp_path: Path):
    bench = thr.MODES["T2-down"]
    assert (bench.mode, bench.direction, bench.phy) == ("T2", "other", "S")
    # the throughput benchmark's default recording keeps its six modes
    assert "T2-down" not in thr.parse_modes(None, thr._DEFAULT_MODES)
    loud = sens.Trial("ebn0", "T2-down", 30.0, None, 0.0, 3, seed=4)
    path, sent, _ = sens._render_trial(loud, tmp_path)
    assert path.name == "sens_868.3M_1600k.cu8"
    # Manchester at 32.768 kcps: 3 frames of 58 bytes need >= 3 * 58 * 16 chips
    assert path.stat().st_size / 2 / 1.6e6 > 3 * 58 * 16 / 32_768
    assert len(sent) == 3 and all(len(frame) == 58 for frame in sent)
    assert sens.run_trial(loud)["rows"][0]["found"] == 3
    quiet = sens.Trial("ebn0", "T2-down", -6.0, None, 0.0, 3, seed=4)
    assert sens.run_trial(quiet)["rows"][0]["found"] == 0
    # 58 on-air bytes, Manchester (the S chain): the hard-chip curve is Manchester's
    assert sens.frame_bits("T2-down") == 464
    (chip,) = [
        r for r in sens.theory_rows(["T2-down"], [10.0]) if "chip" in r["receiver"]
    ]
    want = float(frame_success(10.0, 464, "manchester", "chip"))
    assert chip["success"] == pytest.approx(want, rel=1e-5)


def test_trials_are_deterministic():
    trial = sens.Trial("cfo", "C1B", 9.0, 30e3, 0.0, 4, seed=2)
    assert sens.run_trial(trial) == sens.run_trial(trial)


@pytest.fixture(scope="module")
def tiny_rows() -> list[dict]:
    trials = sens.plan_trials(
        ["C1A"], [8.0, 30.0], [20e3], [1000.0], count=2, sweep_ebn0_db=30.0, seed=1
    )
    assert [t.sweep for t in trials] == ["ebn0", "ebn0", "cfo", "clock"]
    return sens.run_sensitivity(trials, jobs=1) + sens.theory_rows(["C1A"], [8.0, 30.0])


def test_table_shape_and_values(tiny_rows: list[dict], tmp_path: Path):
    csv_path, json_path = sens.write_table(tiny_rows, {"seed": 1}, tmp_path)
    with csv_path.open() as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 4 + 2 * 3  # four trials, two points x three theory lines
    assert list(table[0]) == [
        "sweep", "mode", "ebn0_db", "cfo_hz", "chip_ppm", "receiver", "sent",
        "found", "success",
    ]  # fmt: skip
    loaded = json.loads(json_path.read_text())
    assert loaded["meta"] == {"seed": 1} and len(loaded["rows"]) == len(table)
    assert loaded["crossings"] == sens.crossings(tiny_rows)
    loud = [r for r in table if r["receiver"] == "wmbus-sdr" and r["ebn0_db"] == "30.0"]
    assert [(r["sent"], r["found"]) for r in loud] == [("2", "2")] * 3
    # 8 dB: Eb/N0 = 6.30957, p = 0.5 e^-3.15479 = 0.0213237, 464 bits (58 bytes)
    n_bits = sens.frame_bits("C1A")
    assert n_bits == 464
    ideal = [r for r in table if r["receiver"] == "theory-ideal"]
    assert float(ideal[0]["success"]) == pytest.approx((1 - 0.0213237) ** 464, rel=1e-3)
    assert "C1A" in sens.summary(tiny_rows)


def test_crossing_is_linear_between_the_bracketing_points():
    # 0.2 at 9 dB, 0.8 at 10 dB: 0.5 lies half way, 0.7 five sixths of the way
    points = [(10.0, 0.8), (8.0, 0.0), (9.0, 0.2), (11.0, 1.0)]
    assert sens.crossing_db(points, 0.5) == pytest.approx(9.5)
    assert sens.crossing_db(points, 0.7) == pytest.approx(9 + 5 / 6)
    # 0.9 between 0.8 at 10 dB and 1.0 at 11 dB
    assert sens.crossing_db(points, 0.9) == pytest.approx(10.5)
    # a level met exactly at a point is that point
    assert sens.crossing_db(points, 0.8) == pytest.approx(10.0)
    # the first crossing counts, not a later dip and recovery
    wobbly = [(1.0, 0.0), (2.0, 0.6), (3.0, 0.4), (4.0, 1.0)]
    assert sens.crossing_db(wobbly, 0.5) == pytest.approx(1 + 5 / 6)
    # reached at the lowest point: that point; never reached: None
    assert sens.crossing_db([(8.0, 0.95), (9.0, 1.0)], 0.9) == 8.0
    assert sens.crossing_db([(8.0, 0.1), (9.0, 0.3)], 0.5) is None


def _ebn0_row(mode: str, ebn0_db: float, success: float) -> dict:
    trial = sens.Trial("ebn0", mode, ebn0_db, None, 0.0, 10, 1)
    return sens._row(trial, "wmbus-sdr", round(10 * success))


def test_summary_and_crossings_report_interpolated_points():
    rows = [_ebn0_row("T1", db, s) for db, s in [(8, 0.0), (9, 0.2), (10, 0.8)]]
    rows += [_ebn0_row("S1", db, s) for db, s in [(8, 0.6), (9, 0.9)]]
    assert sens.crossings(rows) == [
        {"mode": "T1", "receiver": "wmbus-sdr", "level": 0.5, "ebn0_db": 9.5,
         "bracketed": True},
        {"mode": "T1", "receiver": "wmbus-sdr", "level": 0.9, "ebn0_db": None,
         "bracketed": False},
        {"mode": "S1", "receiver": "wmbus-sdr", "level": 0.5, "ebn0_db": 8.0,
         "bracketed": False},
        {"mode": "S1", "receiver": "wmbus-sdr", "level": 0.9, "ebn0_db": 9.0,
         "bracketed": True},
    ]  # fmt: skip
    lines = sens.summary(rows).splitlines()
    assert "linear between points" in lines[0]
    assert lines[1:] == [
        "  T1       wmbus-sdr 9.5 / -",
        "  S1       wmbus-sdr <=8.0 / 9.0",
    ]


def test_plots_are_pngs(tiny_rows: list[dict], tmp_path: Path):
    pytest.importorskip("matplotlib", reason="matplotlib is in the bench extra")
    pngs = sens.plot_results(tiny_rows, tmp_path)
    assert [p.name for p in pngs] == [
        "sensitivity_ebn0.png",
        "sensitivity_cfo.png",
        "sensitivity_clock.png",
    ]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)


def test_frame_bits_count_crcs():
    # 50 bytes without CRCs; frame A adds 2 per block: blocks of 10, 16, 16, 8 bytes
    assert sens.frame_bits("T1") == 8 * (50 + 2 * 4)


# --- peers: command handling and counting ---------------------------------------------


def _fake_recording(tmp_path: Path, text: str) -> thr.Recording:
    sent = tuple(
        thr.SentTelegram("T1", f"{10_000_000 + k:08d}", "", 0.0, 20.0) for k in range(3)
    )
    path = tmp_path / "fake.txt"
    path.write_text(text)
    return thr.Recording(path, 2.4e6, 868.95e6, 0, sent)


def test_count_found_by_id_or_wire_bytes():
    ids = ["10000000", "10000001", "12345678"]
    text = '{"id" : 10000001}\nraw 2e44ae08785634120107\n110000000 is not an id\n'
    assert thr.count_found(text, ids) == {1, 2}


def test_peer_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "x_868.95M_2400k.cu8"
    assert thr.peer_commands("tool -v {path} -q", path, ["T1"]) == [
        ("tool -v {path} -q", ["tool", "-v", str(path), "-q"])
    ]
    assert thr.peer_commands("tool", path, ["T1"])[0][1] == ["tool", str(path)]
    with pytest.raises(ValueError, match="command"):
        thr.peer_commands("  ", path, ["T1"])
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="rtl-433"):
        thr.peer_commands("rtl_433", path, ["T1"])


def test_rtl433_runs_once_per_detector(tmp_path: Path):
    if thr.shutil.which("rtl_433") is None:
        pytest.skip("rtl_433 is not on PATH (Debian package rtl-433)")
    path = tmp_path / "x_868.95M_2400k.cu8"
    labels = [label for label, _ in thr.peer_commands("rtl_433", path, ["S1", "C1B"])]
    assert labels == ["rtl_433", "rtl_433 -Y minmax"]
    # no rtl_433 decoder for the C2 downlink: nothing to run
    assert thr.peer_commands("rtl_433", path, ["C2-down"]) == []
    # the T2 downlink is S1-m on air: the default detector hears it
    assert [label for label, _ in thr.peer_commands("rtl_433", path, ["T2-down"])] == [
        "rtl_433"
    ]


def test_run_peer_with_any_command(tmp_path: Path):
    rec = _fake_recording(tmp_path, "found 10000002 and 10000000\n")
    (run,) = thr.run_peer(rec, "cat", ["T1"], repeat=2)
    assert run.label == "cat" and run.found == (0, 2)
    assert run.wall_s > 0 and run.cpu_s >= 0 and run.rss_mb > 0


def test_a_failing_peer_is_reported(tmp_path: Path):
    rec = _fake_recording(tmp_path, "")
    with pytest.raises(RuntimeError, match="failed"):
        thr.run_peer(rec, f"{sys.executable} -c 'raise SystemExit(3)'", ["T1"], 1)


# --- throughput on one second ---------------------------------------------------------


def test_throughput_on_one_second(tmp_path: Path):
    result = thr.run_throughput(
        seconds=1,
        names=["T1", "C1B"],
        repeat=1,
        cache_dir=tmp_path,
        stages=False,
        compare="cat",
    )  # cat prints the cu8: no ids in it
    rec = result["recording"]
    assert rec["sent"] == 4 and rec["sent_per_mode"] == {"T1": 2, "C1B": 2}
    path = Path(rec["path"])
    assert path.stat().st_size == 2 * 2_400_000  # cu8: two bytes per sample
    manifest = json.loads(path.with_suffix(".json").read_text())
    loud = sum(1 for s in manifest["sent"] if s["ebn0_db"] >= 16.0)
    ours = result["ours"]
    assert loud <= ours["found"] <= 4 and ours["extra_frames"] == 0
    assert ours["samples_per_s"] == pytest.approx(2_400_000 / ours["wall_s"])
    assert ours["rss_mb"] > 10 and result["stack"]["us_per_telegram"] > 0
    assert [p["label"] for p in result["peers"]] == ["cat"]
    # made once, then taken from the cache
    mtime = path.stat().st_mtime_ns
    again = thr.cached_recording(tmp_path, 1, 2.4e6, 868.95e6, ["T1", "C1B"])
    assert path.stat().st_mtime_ns == mtime and len(again.sent) == 4
    assert "found" in thr.format_throughput(result)


def test_recording_levels_match_the_manifest(tmp_path: Path):
    rec = thr.make_recording(
        tmp_path / "r_868.95M_2400k.cu8", 1, 2.4e6, 868.95e6, ["C1A"], seed=5
    )
    raw = np.frombuffer(rec.path.read_bytes(), np.uint8).astype(np.float64)
    iq = (raw[0::2] - 127.5) + 1j * (raw[1::2] - 127.5)
    noise_var = np.mean(np.abs(iq[: int(0.004 * 2.4e6)]) ** 2)  # before any burst
    assert noise_var == pytest.approx((thr.NOISE_RMS_FS * 127.5) ** 2, rel=0.1)
    first = rec.sent[0]
    start = int(first.start_s * 2.4e6)
    burst = np.mean(np.abs(iq[start + 200 : start + 2000]) ** 2) - noise_var
    # Eb/N0 = burst power / bit rate / (noise variance / sample rate)
    ebn0_db = 10 * np.log10(burst / 100_000 / (noise_var / 2.4e6))
    assert ebn0_db == pytest.approx(first.ebn0_db, abs=0.5)


# --- the retired scripts --------------------------------------------------------------


def test_nothing_uses_the_retired_benchmark_scripts():
    # the two stand-alone scripts of the first generation gave way to `wmbus bench`;
    # their names are built here so that this file does not match itself
    root = Path(__file__).resolve().parents[2]
    retired = ["bench_rx_" + kind for kind in ("throughput", "sensitivity")]
    assert not any((root / "benchmarks" / f"{n}.py").exists() for n in retired)
    suffixes = {".py", ".md", ".toml", ".cfg", ".yml", ".yaml", ".sh", ".txt"}
    mentions = []
    for folder, dirs, files in os.walk(root):
        # venv, caches, git and generated package metadata are not ours to check
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        dirs[:] = [d for d in dirs if not d.endswith(".egg-info")]
        for name in files:
            path = Path(folder) / name
            if path.suffix in suffixes or name == "Makefile":
                text = path.read_text(errors="replace")
                mentions += [f"{path}: {n}" for n in retired if n in text]
    assert mentions == []


# --- the CLI --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["bench", "throughput", "--modes", "Q9"],
        ["bench", "sensitivity", "--points", "1:2:0"],
        ["bench", "sensitivity", "--bogus"],
        ["bench", "throughput", "--rate", "fast"],
        ["bench"],
    ],
)
def test_cli_bad_usage_exits_2(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        wmbus_main(argv)
    assert exc.value.code == 2
    assert "wmbus" in capsys.readouterr().err


def test_cli_missing_peer_exits_1(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    code = wmbus_main(
        [
            "bench",
            "sensitivity",
            "--quick",
            "--compare",
            "rtl_433",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 1
    assert "rtl-433" in capsys.readouterr().err
