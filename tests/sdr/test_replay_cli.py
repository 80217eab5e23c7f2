"""``wmbus replay``: bad input, output and counters (stand-in receiver), and end to end.

The end-to-end tests run the real ``dsp.receiver.Receiver`` on the bundled multi-mode
recording (ground truth: its SigMF annotations, keys: recordings/keys.txt), on
recordings made here by our transmitter from made-up telegrams, and on the shared
real capture (expected bytes read from its README at run time).
"""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from sdr.cli import build_parser, main
from sdr.cli_replay import replay
from sdr.sink_file import FileSink
from sdr.source import TruncatedError
from stack.frame import add_crcs
from tests.sdr.test_output_rx import wmbusmeters_reads
from tests.sdr.test_pipeline import (
    KEY_A,
    FakeFrame,
    frame_for,
    scripted,
    telegram,
)

RECORDINGS = Path(__file__).resolve().parents[2] / "recordings"
META = RECORDINGS / "multimode_868.95M_2400k.sigmf-meta"
KEYS = RECORDINGS / "keys.txt"


def _main(capsys, argv):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wmbus: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]


def _cu8(path: Path, n_samples: int, extra: bytes = b"") -> Path:
    path.write_bytes(bytes([127, 128]) * n_samples + extra)
    return path


# -- bad input: one line, non-zero exit, no traceback -------------------------------


def test_missing_file(capsys, tmp_path):
    missing = tmp_path / "gone_868.95M_2400k.cu8"
    status, out, err = _main(capsys, ["replay", str(missing)])
    assert status == 1 and out == ""
    _one_line_error(err, "no such file")


def test_empty_file(capsys, tmp_path):
    path = tmp_path / "empty_868.95M_2400k.cu8"
    path.write_bytes(b"")
    status, _, err = _main(capsys, ["replay", str(path)])
    assert status == 1
    _one_line_error(err, "empty")


def test_unreadable_file(capsys, tmp_path):
    path = tmp_path / "dir_868.95M_2400k.cu8"
    path.mkdir()  # a directory cannot be opened as a file, even by root
    status, _, err = _main(capsys, ["replay", str(path)])
    assert status == 1
    _one_line_error(err, "cannot open")


def test_unknown_format_by_name(capsys, tmp_path):
    path = _cu8(tmp_path / "capture_868.95M_2400k.bin", 10)
    status, _, err = _main(capsys, ["replay", str(path)])
    assert status == 1
    _one_line_error(err, "give --format")


def test_unknown_format_flag(capsys, tmp_path):
    path = _cu8(tmp_path / "capture_868.95M_2400k.cu8", 10)
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(path), "--format", "cu4"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "flags", "needle"),
    [
        ("capture.cu8", [], "give --rate"),
        ("capture.cu8", ["--rate", "2.4M"], "give --center"),
        ("capture_2400k.cu8", [], "give --center"),
    ],
)
def test_rate_or_centre_not_inferable(capsys, tmp_path, name, flags, needle):
    path = _cu8(tmp_path / name, 10)
    status, _, err = _main(capsys, ["replay", str(path), *flags])
    assert status == 1
    _one_line_error(err, needle)


def test_unsupported_sigmf_datatype(capsys, tmp_path):
    meta = tmp_path / "rec.sigmf-meta"
    meta.write_text(
        json.dumps(
            {
                "global": {
                    "core:datatype": "ri16_le",
                    "core:sample_rate": 2.4e6,
                    "core:version": "1.0.0",
                },
                "captures": [{"core:sample_start": 0, "core:frequency": 868.95e6}],
                "annotations": [],
            }
        )
    )
    (tmp_path / "rec.sigmf-data").write_bytes(bytes(64))
    status, _, err = _main(capsys, ["replay", str(meta)])
    assert status == 1
    _one_line_error(err, "ri16_le", "not supported")


@pytest.mark.parametrize(
    ("flags", "needle"),
    [
        (["--rate", "fast"], "--rate"),
        (["--center", "868.95X"], "--center"),
        (["--modes", "T,Q"], "--modes"),
    ],
)
def test_bad_flag_values_are_usage_errors(capsys, tmp_path, flags, needle):
    path = _cu8(tmp_path / "capture_868.95M_2400k.cu8", 10)
    with pytest.raises(SystemExit) as exc:
        main(["replay", str(path), *flags])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err


def test_bad_key(capsys, tmp_path):
    path = _cu8(tmp_path / "capture_868.95M_2400k.cu8", 10)
    status, _, err = _main(capsys, ["replay", str(path), "--key", "1234"])
    assert status == 1
    _one_line_error(err)


# -- with a stand-in receiver --------------------------------------------------------


def _replay(argv, factory, stderr=None):
    args = build_parser().parse_args(["replay", *argv])
    out, err = io.StringIO(), stderr or io.StringIO()
    status = replay(args, stdout=out, stderr=err, receiver_factory=factory)
    return status, out.getvalue(), err.getvalue()


def _script():
    bad = bytearray(add_crcs(telegram(access=3), "A"))
    bad[13] ^= 0x08
    return [
        (100, frame_for(telegram(access=1), "T", sample_index=50, time_s=50 / 2.4e6)),
        (
            300,
            frame_for(
                telegram(meter_id="27182818", access=2, security_mode=5, key=KEY_A),
                "C",
                sample_index=200,
            ),
        ),
        (500, FakeFrame(bytes(bad), "T", crc_ok=False, sample_index=400)),
        (700, frame_for(telegram(c_field=0x53, access=4), "S", sample_index=600)),
    ]


def test_replay_jsonl_and_counters(tmp_path):
    path = _cu8(tmp_path / "capture_868.95M_2400k.cu8", 1_000)
    keys = tmp_path / "keys.txt"
    keys.write_text(f"# made up\n27182818 {KEY_A}\n")
    factory = scripted(_script())
    status, out, err = _replay(
        [str(path), "--output", "jsonl", "--keys", str(keys)], factory
    )
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert [(r["sample"], r["mode"], r["direction"]) for r in records] == [
        (50, "T1", "meter"),
        (200, "C1", "meter"),
        (600, "T2", "other"),
    ]
    assert records[1]["decrypted"] and records[1]["error"] is None
    receiver = factory.made[0]
    assert (receiver.sample_rate_hz, receiver.center_freq_hz) == (2.4e6, 868.95e6)
    assert err.splitlines()[-1] == (
        "wmbus: 3 telegrams (3 decoded, 0 no key, 0 decrypt failed, 0 not for us), "
        "1 CRC failed"
    )


def test_replay_all_adds_bad_crc_frames(tmp_path):
    path = _cu8(tmp_path / "capture_868.95M_2400k.cu8", 1_000)
    status, out, err = _replay(
        [str(path), "--output", "rtlwmbus", "--all"], scripted(_script())
    )
    assert status == 0
    lines = out.splitlines()
    # T2 is not written in this format; the bad frame is, marked CRC_OK 0.
    assert [line[:4] for line in lines] == ["T1;1", "C1;1", "T1;0"]
    accepted = [wmbusmeters_reads(line + "\n") for line in lines]
    assert [a is not None for a in accepted] == [True, True, False]
    assert "1 no key" in err


def test_replay_text_default_and_modes_filter(tmp_path):
    path = _cu8(tmp_path / "capture_868.95M_2400k.cu8", 1_000)
    factory = scripted(_script())
    status, out, err = _replay([str(path), "--modes", "s"], factory)
    assert status == 0
    assert factory.made[0].phys == ["S"]
    assert out.count("\n") == 1 and " T2 A " in out and "XYZ 31415926" in out
    assert "wmbus: 1 telegram (1 decoded" in err


def test_replay_nothing_found_exits_zero(tmp_path):
    path = _cu8(tmp_path / "quiet_868.95M_2400k.cu8", 1_000)
    status, out, err = _replay([str(path)], scripted([]))
    assert (status, out) == (0, "")
    assert "0 telegrams" in err


def test_replay_truncated_decodes_then_raises(tmp_path):
    path = _cu8(tmp_path / "cut_868.95M_2400k.cu8", 1_000, extra=b"\x80")
    with pytest.raises(TruncatedError, match="truncated"):
        _replay([str(path), "--output", "jsonl"], scripted(_script()))


def test_replay_truncated_output_comes_first(tmp_path):
    path = _cu8(tmp_path / "cut_868.95M_2400k.cu8", 1_000, extra=b"\x80")
    args = build_parser().parse_args(["replay", str(path), "--output", "jsonl"])
    out, err = io.StringIO(), io.StringIO()
    with pytest.raises(TruncatedError):
        replay(args, stdout=out, stderr=err, receiver_factory=scripted(_script()))
    assert len(out.getvalue().splitlines()) == 3
    assert "3 telegrams" in err.getvalue()


def test_replay_sigmf_datetime_sets_the_clock(tmp_path):
    meta = tmp_path / "dated.sigmf-meta"
    with FileSink(
        meta, sample_rate_hz=1e6, center_freq_hz=868.95e6, sample_format="cu8"
    ) as sink:
        sink.write(np.zeros(1_000, dtype=np.complex64))
    content = json.loads(meta.read_text())
    content["captures"][0]["core:datetime"] = "2024-05-01T12:00:00.000Z"
    meta.write_text(json.dumps(content))
    script = [(900, frame_for(telegram(), "T", time_s=0.75))]
    status, out, _ = _replay([str(meta), "--output", "rtlwmbus"], scripted(script))
    assert status == 0
    assert out.startswith("T1;1;1;2024-05-01 12:00:00.750;")
    _, out_json, _ = _replay([str(meta), "--output", "jsonl"], scripted(script))
    assert json.loads(out_json)["timestamp"] == "2024-05-01T12:00:00.750Z"


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize(
    ("n_samples", "tty", "drawn"),
    [
        (30_000, True, True),  # 3 s at 10 kS/s on a terminal
        (30_000, False, False),  # not a terminal
        (15_000, True, False),  # 1.5 s: too short to bother
    ],
)
def test_progress_bar(tmp_path, n_samples, tty, drawn):
    path = _cu8(tmp_path / "slow.cu8", n_samples)
    stderr = _Terminal() if tty else io.StringIO()
    status, _, err = _replay(
        [str(path), "--rate", "10k", "--center", "868.95M"], scripted([]), stderr=stderr
    )
    assert status == 0
    assert ("100%" in err) is drawn and ("\r[" in err) is drawn
    assert err.rstrip("\n").split("\r")[-1].startswith("wmbus: 0 telegrams")


def test_missing_channel_warning(tmp_path):
    path = _cu8(tmp_path / "capture_868.95M_2400k.cu8", 100)

    def factory(rate, centre, **options):
        receiver = scripted([])(rate, centre, **options)
        receiver.channels = [("T", 868.95e6), ("C", 868.95e6)]
        return receiver

    _, _, err = _replay([str(path), "--modes", "S,T,C2"], factory)
    assert "warning: no channel of mode S, C2 lies in the sampled band" in err
    _, _, err = _replay([str(path)], factory)  # all modes by default: no fuss
    assert "warning" not in err


def test_receiver_refusing_the_rate_is_one_line(capsys, tmp_path):
    path = _cu8(tmp_path / "capture_868.95M_2400k.cu8", 100)

    def factory(rate, centre, **options):
        raise ValueError("sample rate 2.4e+06 too low; give at least 3 MS/s")

    args = build_parser().parse_args(["replay", str(path)])
    from stack.errors import SourceError

    with pytest.raises(SourceError, match="too low"):
        replay(args, receiver_factory=factory)


# -- end to end with the real receiver -----------------------------------------------


@pytest.fixture(scope="module")
def receiver_module():
    return pytest.importorskip("dsp.receiver", reason="dsp/receiver.py not written yet")


@pytest.fixture(scope="module")
def bundled_jsonl(receiver_module):
    args = build_parser().parse_args(
        ["replay", str(META), "--keys", str(KEYS), "--output", "jsonl"]
    )
    out, err = io.StringIO(), io.StringIO()
    status = replay(args, stdout=out, stderr=err)
    return (
        status,
        [json.loads(line) for line in out.getvalue().splitlines()],
        err.getvalue(),
    )


def _annotations():
    from sdr.source_file import FileSource

    with FileSource(META) as source:
        return source.annotations


_EXPECTED_MODE = {"S1-m": "S1"}  # S1-m is S1 with a short preamble: same on air


def test_e2e_bundled_recording_every_telegram(bundled_jsonl):
    status, records, err = bundled_jsonl
    assert status == 0, err
    annotations = _annotations()
    assert len(records) == len(annotations), err  # and nothing false on top
    for annotation in annotations:
        hits = [
            r
            for r in records
            if r["telegram"] == annotation.telegram_hex
            and annotation.sample_start <= r["sample"] <= annotation.last_sample
        ]
        assert len(hits) == 1, (annotation.mode, annotation.sample_start)
        record = hits[0]
        assert record["mode"] == _EXPECTED_MODE.get(annotation.mode, annotation.mode)
        assert record["frame_format"] == annotation.frame_format
        assert record["crc_ok"] and record["error"] is None, record["error"]
        assert record["frame"] == annotation.frame_hex
        # The carrier estimate is passed through; its accuracy is the receiver's
        # business (mode T estimates are the coarsest, within 8 kHz here).
        carrier_hz = record["channel_hz"] + record["cfo_hz"]
        assert abs(carrier_hz - annotation.carrier_hz) < 10e3
    assert sum(r["decrypted"] for r in records) >= 3
    assert f"{len(annotations)} telegrams ({len(annotations)} decoded" in err


def test_e2e_bundled_recording_rtlwmbus(receiver_module, capsys):
    status, out, _ = _main(capsys, ["replay", str(META), "--output", "rtlwmbus"])
    assert status == 0
    expected = sorted(
        (_EXPECTED_MODE.get(a.mode, a.mode), a.telegram_hex)
        for a in _annotations()
        if _EXPECTED_MODE.get(a.mode, a.mode) in ("T1", "C1", "S1")
    )
    lines = out.splitlines()
    got = sorted((line[:2], wmbusmeters_reads(line + "\n")[2].hex()) for line in lines)
    assert got == expected


def test_e2e_mode_filter(receiver_module, capsys):
    status, out, _ = _main(
        capsys, ["replay", str(META), "--modes", "C2", "--output", "jsonl"]
    )
    assert status == 0
    modes = [json.loads(line)["mode"] for line in out.splitlines()]
    assert modes == ["C2"]


def test_e2e_truncated_file_decodes_what_is_there(receiver_module, capsys, tmp_path):
    path = tmp_path / "cut_868.95M_2400k.cu8"
    data = (RECORDINGS / "multimode_868.95M_2400k.sigmf-data").read_bytes()
    path.write_bytes(data[:-1])
    status, out, err = _main(
        capsys, ["replay", str(path), "--keys", str(KEYS), "--output", "jsonl"]
    )
    assert status == 1
    assert len(out.splitlines()) == len(_annotations())
    assert err.strip().splitlines()[-1].startswith("wmbus: ")
    assert "truncated" in err and "Traceback" not in err


def test_e2e_transmit_then_replay_compact_and_encrypted(
    receiver_module, capsys, tmp_path
):
    from sdr.transmit import TxFrame, render

    full = telegram(access=1)
    compact = telegram(access=2, compact=True)
    secret = telegram(meter_id="27182818", access=3, security_mode=5, key=KEY_A)
    frames = [TxFrame(full, "T1"), TxFrame(compact, "C1", "B"), TxFrame(secret, "S1-m")]
    iq, _ = render(
        frames, sample_rate_hz=1.6e6, center_freq_hz=868.625e6, ebn0_db=25.0, seed=7
    )
    path = tmp_path / "made_868.625M_1600k.cu8"
    with FileSink(path, sample_rate_hz=1.6e6, center_freq_hz=868.625e6) as sink:
        sink.write(iq)
    keys = tmp_path / "keys.txt"
    keys.write_text(f"27182818 {KEY_A}\n")
    status, out, err = _main(
        capsys, ["replay", str(path), "--keys", str(keys), "--output", "jsonl"]
    )
    assert status == 0, err
    records = sorted(
        (json.loads(line) for line in out.splitlines()), key=lambda r: r["sample"]
    )
    assert [(r["mode"], r["frame_format"], r["telegram"]) for r in records] == [
        ("T1", "A", full.hex()),
        ("C1", "B", compact.hex()),
        ("S1", "A", secret.hex()),
    ]
    assert records[1]["records"] == records[0]["records"] != []
    assert records[2]["decrypted"] and records[2]["error"] is None


def _readme_telegrams(readme: Path) -> list[str]:
    return re.findall(r"`([0-9a-f]{40,})`", readme.read_text())


def test_e2e_shared_real_capture(receiver_module, shared, capsys, tmp_path):
    capture = shared / "recordings" / "rtlsdr_868.950M_1M6_samples2.cu8"
    if not capture.is_file():
        pytest.skip("shared capture absent")
    expected = _readme_telegrams(shared / "recordings" / "README.md")
    assert len(expected) == 2
    # The shared folder is read-only; the name already carries centre and rate.
    status, out, err = _main(capsys, ["replay", str(capture), "--output", "rtlwmbus"])
    assert status == 0, err
    got = [wmbusmeters_reads(line + "\n") for line in out.splitlines()]
    assert sorted(g[2].hex() for g in got) == sorted(expected)
    assert all(line.startswith("T1;1;") for line in out.splitlines())


def test_e2e_copy_without_rate_in_name_needs_flags(receiver_module, capsys, tmp_path):
    path = tmp_path / "plain.cu8"
    shutil.copyfile(RECORDINGS / "multimode_868.95M_2400k.sigmf-data", path)
    status, _, err = _main(capsys, ["replay", str(path)])
    assert status == 1
    _one_line_error(err, "give --rate")
    status, out, err = _main(
        capsys,
        [
            "replay",
            str(path),
            "--rate",
            "2.4M",
            "--center",
            "868.95M",
            "--modes",
            "T",
            "--output",
            "jsonl",
        ],
    )
    assert status == 0, err
    assert {json.loads(line)["mode"] for line in out.splitlines()} == {"T1"}


@pytest.mark.parametrize("rate_hz", [1.0e6, 1.2e6, 2.048e6])
def test_e2e_rate_and_centre_from_the_file_name(
    receiver_module, capsys, tmp_path, rate_hz
):
    from sdr.filename import build_filename
    from sdr.transmit import TxFrame, render

    data = telegram(access=9)
    iq, _ = render(
        [TxFrame(data, "T1")],
        sample_rate_hz=rate_hz,
        center_freq_hz=868.95e6,
        ebn0_db=25.0,
        seed=3,
    )
    path = tmp_path / build_filename("odd", 868.95e6, rate_hz, "cu8")
    with FileSink(path, sample_rate_hz=rate_hz, center_freq_hz=868.95e6) as sink:
        sink.write(iq)
    status, out, err = _main(capsys, ["replay", str(path), "--output", "rtlwmbus"])
    assert status == 0, err
    assert [wmbusmeters_reads(line + "\n")[2] for line in out.splitlines()] == [data]


def test_e2e_rate_the_receiver_refuses(receiver_module, capsys, tmp_path):
    # 250 kS/s (rtl_433's default rate) holds no wM-Bus channel
    path = _cu8(tmp_path / "narrow_868.95M_250k.cu8", 1_000)
    status, out, err = _main(capsys, ["replay", str(path)])
    assert status == 1 and out == ""
    _one_line_error(err, "273 kS/s")


def test_e2e_standard_input(receiver_module, capsys, monkeypatch):
    data = (RECORDINGS / "multimode_868.95M_2400k.sigmf-data").read_bytes()
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    argv = [
        "replay",
        "-",
        "--format",
        "cu8",
        "--rate",
        "2400k",
        "--center",
        "868.95M",
        "--keys",
        str(KEYS),
        "--output",
        "jsonl",
    ]
    status, out, err = _main(capsys, argv)
    assert status == 0, err
    assert len(out.splitlines()) == len(_annotations())


def test_standard_input_needs_the_format(capsys):
    status, _, err = _main(capsys, ["replay", "-"])
    assert status == 1
    _one_line_error(err, "--format")


def test_replay_format_choices_are_the_file_sources_formats():
    # cli_replay keeps its own copy so that building the parser imports no numpy;
    # this keeps the copy from drifting.
    from sdr import cli_replay
    from sdr.filename import FILE_FORMATS

    assert cli_replay._FILE_FORMATS == FILE_FORMATS
