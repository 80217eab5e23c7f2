"""``wmbus transmit``: files, SigMF ground truth, rtl_433, SoapySDR, and bad input.

Most tests call ``sdr.cli.main`` in-process.  What a file holds is judged three ways:
``FileSource`` reads it back (rate, centre, length, annotations), the test receiver
of test_transmit_render.py demodulates each annotated span, and Debian's rtl_433
decodes T1 and C1 files written by the command.  ``--device`` runs through the real
SoapySDR API and the file-backed ``wmbusloop`` module (fixtures of test_soapy.py).
Every refusal must exit 1 (2 for usage) with one ``wmbus: `` line and leave no file.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from dsp.convert import bytes_to_iq
from sdr.cli import main
from sdr.source_file import FileSource
from sdr.transmit import TxFrame, render
from stack.frame import add_crcs
from stack.telegram import decode_telegram
from tests.helpers_tx import build_telegram
from tests.sdr.test_soapy import (  # noqa: F401  (pytest fixtures)
    DRIVER,
    loopback,
    loopback_lib,
    soapy,
)
from tests.sdr.test_transmit_render import demodulate, phy_facts
from tests.test_rtl433_oracle import needs_rtl433, run_rtl433

REPO = Path(__file__).resolve().parents[2]
KEY_HEX = "00112233445566778899aabbccddeeff"
T1_TEL = build_telegram("QRS", "13572468", 33, access_no=7, volume_l=4242, seed=8)
C1_TEL = build_telegram(
    "TUV", "86421357", 47, device_type=0x04, access_no=9, volume_l=99, seed=9
)
METER = "id=11223344,man=XYZ,type=heat,acc=0x21,energy=12345Wh,volume/s1=1.5m3"


def run(capsys, *argv: str) -> tuple[int, str]:
    """Run ``wmbus ARGV``; return (exit status, stderr).  Usage errors exit too."""
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse: exit 2 for usage
        status = exc.code
    out, err = capsys.readouterr()
    assert out == ""  # transmit reports on stderr only
    return status, err


def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


# --- files --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extension", "bytes_per_sample", "quantum"),
    [("cu8", 2, 1 / 127.5), ("cs16", 4, 1 / 32767), ("cf32", 8, 0)],
)
def test_raw_files_hold_the_rendered_baseband(
    tmp_path, capsys, extension, bytes_per_sample, quantum
):
    path = tmp_path / f"tx_868.95M_1000k.{extension}"
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        "T1",
        T1_TEL.hex(),
        "--rate",
        "1M",
        "--center",
        "868.95M",
        "--out",
        str(path),
    )
    assert status == 0, err
    assert err.startswith("wrote 1 telegrams") and str(path) in err
    expected, _ = render(
        [TxFrame(T1_TEL, "T1")], sample_rate_hz=1e6, center_freq_hz=868.95e6
    )
    assert path.stat().st_size == expected.size * bytes_per_sample
    with FileSource(path) as source:  # rate and centre from the rtl_433-style name
        assert (source.sample_rate_hz, source.center_freq_hz) == (1e6, 868.95e6)
        assert source.n_samples == expected.size
        got = source.read(expected.size + 10)
    # Within one quantisation step per component (cu8 has no code for 0: 127.5).
    for part in (np.real, np.imag):
        np.testing.assert_allclose(
            part(got), part(expected), rtol=0, atol=quantum * 1.001 + 1e-7
        )
    assert files_in(tmp_path) == [path.name]


def test_sigmf_annotations_are_the_ground_truth(tmp_path, capsys):
    meta = tmp_path / "mixed.sigmf-meta"
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        "C1",
        "--format",
        "B",
        C1_TEL.hex(" "),
        "--meter",
        METER,
        "--key",
        KEY_HEX,
        "--carrier-offset=-20k",
        "--out",
        str(meta),
    )
    assert status == 0, err
    assert files_in(tmp_path) == ["mixed.sigmf-data", "mixed.sigmf-meta"]
    with FileSource(meta) as source:
        assert (source.sample_rate_hz, source.center_freq_hz) == (2.4e6, 868.95e6)
        notes = source.annotations
        iq = source.read(source.n_samples)
    assert iq.size == source.n_samples
    assert [n.mode for n in notes] == ["C1", "C1"]
    assert [n.frame_format for n in notes] == ["B", "B"]
    assert notes[0].telegram_hex == C1_TEL.hex()
    built = bytes.fromhex(notes[1].telegram_hex)
    decoded = decode_telegram(built)
    assert (decoded.link.manufacturer, decoded.link.id) == ("XYZ", "11223344")
    assert decoded.link.device_type == 0x04 and decoded.access_number == 0x21
    assert [(r.quantity, r.value, r.storage) for r in decoded.records] == [
        ("energy", 12345, 0),
        ("volume", 1.5, 1),
    ]
    for note in notes:
        telegram = bytes.fromhex(note.telegram_hex)
        assert note.frame_hex == add_crcs(telegram, "B").hex()
        assert note.carrier_hz == 868.95e6 - 20e3
        heard = demodulate(
            iq,
            note.sample_start,
            note.sample_count,
            phy_facts("C1", frame_format="B"),
            len(note.frame_hex) // 2,
            center_freq_hz=868.95e6,
            sample_rate_hz=2.4e6,
            extra_offset_hz=-20e3,
        )
        assert heard.frame.hex() == note.frame_hex


def test_meter_with_security_5_decodes_with_the_same_key(tmp_path, capsys):
    meta = tmp_path / "enc.sigmf-meta"
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        "T1",
        "--meter",
        METER + ",security=5",
        "--key",
        KEY_HEX,
        "--out",
        str(meta),
    )
    assert status == 0, err
    with FileSource(meta) as source:
        (note,) = source.annotations
    decoded = decode_telegram(bytes.fromhex(note.telegram_hex), KEY_HEX)
    assert decoded.encrypted and decoded.decrypted
    assert [r.value for r in decoded.records] == [12345, 1.5]


def test_repeat_and_interval_in_a_file(tmp_path, capsys):
    meta = tmp_path / "rep.sigmf-meta"
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        "T1",
        T1_TEL.hex(),
        C1_TEL.hex(),
        "--repeat",
        "3",
        "--interval",
        "0.05",
        "--gap",
        "0.004",
        "--rate",
        "1M",
        "--out",
        str(meta),
    )
    assert status == 0, err
    with FileSource(meta) as source:
        notes = source.annotations
    assert [n.telegram_hex for n in notes] == [T1_TEL.hex(), C1_TEL.hex()] * 3
    starts = [n.sample_start for n in notes]
    # One repetition every 50 ms, and 4 ms between the telegrams of one repetition.
    periods = [b - a for a, b in zip(starts[::2], starts[2::2], strict=False)]
    assert periods == [50_000, 50_000]
    for first, second in zip(notes[::2], notes[1::2], strict=True):
        assert second.sample_start == first.sample_start + first.sample_count + 4000


def test_interval_shorter_than_a_repetition_falls_back_to_the_gap(tmp_path, capsys):
    meta = tmp_path / "tight.sigmf-meta"
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        "T1",
        T1_TEL.hex(),
        "--repeat",
        "2",
        "--interval",
        "0",
        "--gap",
        "0.002",
        "--rate",
        "1M",
        "--out",
        str(meta),
    )
    assert status == 0, err
    with FileSource(meta) as source:
        first, second = source.annotations
    assert second.sample_start == first.sample_start + first.sample_count + 2000


def test_channel_model_options_are_deterministic(tmp_path, capsys):
    argv = [
        "transmit",
        "--mode",
        "C1",
        C1_TEL.hex(),
        "--rate",
        "1.2M",
        "--ebn0",
        "15",
        "--cfo=-3k",
        "--clock-ppm",
        "25",
        "--seed",
        "5",
    ]
    one, two, other = tmp_path / "a.cf32", tmp_path / "b.cf32", tmp_path / "c.cf32"
    assert run(capsys, *argv, "--out", str(one))[0] == 0
    assert run(capsys, *argv, "--out", str(two))[0] == 0
    assert run(capsys, *argv[:-1], "6", "--out", str(other))[0] == 0
    assert one.read_bytes() == two.read_bytes() != other.read_bytes()
    expected, _ = render(
        [TxFrame(C1_TEL, "C1")],
        sample_rate_hz=1.2e6,
        center_freq_hz=868.95e6,
        ebn0_db=15.0,
        cfo_hz=-3e3,
        clock_ppm=25.0,
        seed=5,
    )
    np.testing.assert_array_equal(bytes_to_iq(one.read_bytes(), "cf32"), expected)


# --- rtl_433 decodes what the command wrote ------------------------------------------


def _check_rtl433_report(report: dict, telegram: bytes, mode_letter: str) -> None:
    assert report["mode"] == mode_letter and report["mic"] == "CRC"
    assert report["id"] == int(telegram[4:8][::-1].hex())
    assert (report["C"], report["version"], report["type"]) == (
        telegram[1],
        telegram[8],
        telegram[9],
    )
    # Frame A: rtl_433 prints L - 2, the bytes after L, and the last block's CRC.
    data = bytes.fromhex(report["data"])
    assert data[1:-2] == telegram[1:]


@needs_rtl433
@pytest.mark.parametrize(
    ("mode", "telegrams"), [("T1", (T1_TEL, C1_TEL)), ("C1", (C1_TEL, T1_TEL))]
)
def test_rtl433_decodes_a_transmit_file(tmp_path, capsys, mode, telegrams):
    path = tmp_path / "tx_868.95M_1600k.cu8"
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        mode,
        *(t.hex() for t in telegrams),
        "--rate",
        "1.6M",
        "--carrier-offset",
        "15k",
        "--ebn0",
        "35",
        "--seed",
        "3",
        "--out",
        str(path),
    )
    assert status == 0, err
    reports = run_rtl433(path, "minmax")
    assert len(reports) == len(telegrams), reports
    for report, telegram in zip(reports, telegrams, strict=True):
        _check_rtl433_report(report, telegram, mode[0])


# --- SoapySDR: the real API through the wmbusloop module -----------------------------


@pytest.mark.usefixtures("loopback")
def test_device_through_soapysdr_with_repeat(tmp_path, capsys):
    out, log = tmp_path / "air.cf32", tmp_path / "air.log"
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        "T1",
        T1_TEL.hex(),
        "--rate",
        "1M",
        "--repeat",
        "2",
        "--interval",
        "0",
        "--gain",
        "10",
        "--device",
        f"driver={DRIVER},path={out},log={log}",
    )
    assert status == 0, err
    assert err.splitlines() == ["sent repetition 1/2", "sent repetition 2/2"]
    expected, _ = render(
        [TxFrame(T1_TEL, "T1")], sample_rate_hz=1e6, center_freq_hz=868.95e6
    )
    np.testing.assert_array_equal(np.fromfile(out, dtype="<c8"), np.tile(expected, 2))
    lines = log.read_text().splitlines()
    assert lines[:4] == ["rate 1000000", "frequency 868950000", "gain 10", "setup CF32"]
    assert lines.count("activate") == 2 and lines.count("deactivate") == 2
    assert lines[-1] == "close"


@pytest.mark.usefixtures("soapy")
def test_device_that_cannot_transmit(capsys):
    status, err = run(
        capsys, "transmit", "--mode", "T1", T1_TEL.hex(), "--device", "driver=null"
    )
    assert status == 1
    assert err.splitlines() == [
        "wmbus: soapy:driver=null: this device cannot transmit (no TX channel)"
    ]


@pytest.mark.usefixtures("soapy")
def test_device_that_does_not_exist(capsys):
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        "T1",
        T1_TEL.hex(),
        "--device",
        "driver=wmbus_no_such_radio",
    )
    assert status == 1
    (line,) = err.splitlines()
    assert line.startswith("wmbus: soapy:driver=wmbus_no_such_radio: no such device")


# --- refusals -------------------------------------------------------------------------


def _too_many_readings() -> str:
    return "id=11223344,man=XYZ," + ",".join(f"volume/s{i}={i}.5m3" for i in range(60))


LONG_253 = build_telegram("QRS", "13572468", 253)
LONG_257 = bytes([255]) + build_telegram("QRS", "13572468", 256)[1:] + b"\x00"

REFUSALS = [
    # (id, status, argv after "transmit", start of the message after "wmbus: ")
    ("wrong-L", 1, ["--mode", "T1", T1_TEL[:-1].hex()], "L-field 32 but 31 bytes"),
    ("crcs-inside", 1, ["--mode", "T1", add_crcs(T1_TEL, "A").hex()], "L-field 32 but"),
    ("too-short", 1, ["--mode", "T1", T1_TEL[:8].hex()], "a telegram needs at least"),
    (
        "too-long-for-any-format",
        1,
        ["--mode", "C1", LONG_257.hex()],
        "a telegram holds at most 256 bytes",
    ),
    (
        "too-long-for-B",
        1,
        ["--mode", "C1", "--format", "B", LONG_253.hex()],
        "frame: 253 bytes do not fit a format-B frame",
    ),
    (
        "meter-too-long",
        1,
        ["--mode", "C1", "--meter", _too_many_readings()],
        "--meter #1: ",
    ),
    (
        "B-with-T1",
        1,
        ["--mode", "T1", "--format", "B", T1_TEL.hex()],
        "frame format 'B' not allowed for mode T1",
    ),
    (
        "downlink-T1",
        1,
        ["--mode", "T1", "--direction", "other", T1_TEL.hex()],
        "mode T1 has no direction 'other'",
    ),
    (
        "rate-too-low",
        1,
        ["--mode", "T1", "--rate", "100k", T1_TEL.hex()],
        "sample rate 100000 Hz too low for mode T1",
    ),
    (
        "carrier-outside",
        1,
        ["--mode", "S1", "--center", "869.525M", "--rate", "1.2M", T1_TEL.hex()],
        "burst at 868300000 Hz occupies",
    ),
    ("not-hex", 1, ["--mode", "T1", "44zz"], "telegram 1: not hex"),
    ("meter-without-id", 1, ["--mode", "T1", "--meter", "man=XYZ"], "--meter needs id"),
    (
        "meter-mode5-no-key",
        1,
        ["--mode", "T1", "--meter", METER + ",security=5"],
        "--meter ",
    ),
    (
        "meter-key-not-echoed",
        1,
        ["--mode", "T1", "--meter", f"{METER},key={KEY_HEX},security=5,status=999"],
        "--meter id=11223344,man=XYZ,type=heat,acc=0x21,",
    ),
    (
        "unknown-device-string",
        1,
        ["--mode", "T1", T1_TEL.hex(), "--device", "hackrf"],
        "soapy: bad device string 'hackrf'",
    ),
    (
        "bad-rate",
        2,
        ["--mode", "T1", "--rate", "fast", T1_TEL.hex()],
        "--rate: not a frequency: 'fast'",
    ),
    (
        "bad-center",
        2,
        ["--mode", "T1", "--center", "868,95M", T1_TEL.hex()],
        "--center: not a frequency",
    ),
    ("no-telegrams", 2, ["--mode", "T1"], "give telegrams as HEX or with --meter"),
    (
        "repeat-0",
        2,
        ["--mode", "T1", "--repeat", "0", T1_TEL.hex()],
        "--repeat must be >= 1",
    ),
    (
        "unknown-mode",
        2,
        ["--mode", "Q1", T1_TEL.hex()],
        "argument --mode: invalid choice: 'Q1'",
    ),
]


@pytest.mark.parametrize(
    ("status", "argv", "message"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
def test_refusals_are_one_line_and_leave_no_file(
    tmp_path, capsys, status, argv, message
):
    if "--device" not in argv:
        argv = [*argv, "--out", str(tmp_path / "never.sigmf-meta")]
    got, err = run(capsys, "transmit", *argv)
    assert got == status, err
    lines = err.splitlines()
    assert "Traceback" not in err
    if status == 1:
        assert len(lines) == 1, err
        assert lines[0].startswith(f"wmbus: {message}"), err
    else:  # argparse's convention: usage, then "wmbus[ transmit]: error: ..."
        assert lines[0].startswith("usage: wmbus"), err
        assert lines[-1].startswith("wmbus") and f"error: {message}" in lines[-1], err
    assert KEY_HEX not in err
    assert files_in(tmp_path) == []


def test_file_format_option_for_a_name_that_says_nothing(tmp_path, capsys):
    path = tmp_path / "capture.bin"
    status, err = run(
        capsys,
        "transmit",
        "--mode",
        "T1",
        T1_TEL.hex(),
        "--rate",
        "1M",
        "--file-format",
        "cs16",
        "--out",
        str(path),
    )
    assert status == 0, err
    expected, _ = render(
        [TxFrame(T1_TEL, "T1")], sample_rate_hz=1e6, center_freq_hz=868.95e6
    )
    with FileSource(
        path, file_format="cs16", sample_rate_hz=1e6, center_freq_hz=868.95e6
    ) as source:
        assert source.n_samples == expected.size
        got = source.read(expected.size)
    np.testing.assert_allclose(got.real, expected.real, rtol=0, atol=1.001 / 32767)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("capture.bin", "cannot tell the format from the file name"),
        ("missing_dir/x.cu8", "cannot create"),
        ("baseband_868950000Hz.wav", "WAV recordings are read, not written"),
    ],
)
def test_output_files_that_cannot_be_written(tmp_path, capsys, name, message):
    status, err = run(
        capsys, "transmit", "--mode", "T1", T1_TEL.hex(), "--out", str(tmp_path / name)
    )
    assert status == 1
    (line,) = err.splitlines()
    assert line.startswith("wmbus: ") and message in line
    assert files_in(tmp_path) == []


def test_the_installed_command_in_a_subprocess(tmp_path):
    # The real process: exit status, stderr and the file, as a user sees them.
    good = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdr.cli",
            "transmit",
            "--mode",
            "T1",
            T1_TEL.hex(),
            "--rate",
            "1M",
            "--out",
            str(tmp_path / "ok.cu8"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert good.returncode == 0, good.stderr
    assert (tmp_path / "ok.cu8").stat().st_size > 0
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "sdr.cli",
            "transmit",
            "--mode",
            "T1",
            "--format",
            "B",
            T1_TEL.hex(),
            "--out",
            str(tmp_path / "no.cu8"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "wmbus: frame format 'B' not allowed for mode T1 (meter); choose one of ['A']"
    ]
    assert files_in(tmp_path) == ["ok.cu8"]
