"""The `wmbus` command line: output, exit codes, one-line errors without tracebacks."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from sdr.cli import main
from tests.conftest import load_vectors

VECTORS = {v["vid"]: v for v in load_vectors()}


def _vector(category: str, result: str = "ok") -> dict:
    return next(
        v
        for v in VECTORS.values()
        if v["category"] == category and v["expect_result"] == result
    )


def _run(capsys, argv, stdin_text=None, monkeypatch=None):
    if stdin_text is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin_text))
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_decode_json_fields(shared, capsys):
    vector = _vector("mode5")
    status, out, err = _run(
        capsys, ["decode", vector["hex"], "--key", vector["key"], "--json"]
    )
    assert status == 0, err
    info = json.loads(out)
    for key in (
        "manufacturer",
        "id",
        "version",
        "device_type",
        "device_type_name",
        "c_field",
        "ci",
        "access_number",
        "status",
        "security_mode",
        "encrypted",
        "decrypted",
        "error",
        "records",
    ):
        assert key in info
    assert info["id"] == vector["expected"]["id"]
    assert info["encrypted"] and info["decrypted"] and info["error"] is None
    assert info["records"]
    for record in info["records"]:
        assert set(record) >= {
            "quantity",
            "value",
            "unit",
            "storage",
            "tariff",
            "subunit",
            "function",
        }


def test_decode_text_shows_meter_and_values(shared, capsys):
    vector = _vector("plain")
    status, out, _ = _run(capsys, ["decode", vector["hex"]])
    assert status == 0
    assert vector["expected"]["id"] in out
    assert vector["expected"]["manufacturer"] in out
    assert len(out.strip().splitlines()) >= 2  # header line + records


def test_wrong_key_is_one_line_and_exit_1(shared, capsys):
    vector = _vector("negative_wrong_key", "decrypt_fail")
    status, out, err = _run(
        capsys, ["decode", vector["hex"], "--key", vector["key"], "--json"]
    )
    assert status == 1
    assert "wrong key" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    info = json.loads(out)
    assert info["records"] == [] and info["error_type"] == "DecryptionError"


def test_missing_key_reported(shared, capsys):
    vector = _vector("negative_no_key", "no_key")
    status, _, err = _run(capsys, ["decode", vector["hex"]])
    assert status == 1
    assert "no key" in err


def test_bad_crc_reported(shared, capsys):
    vector = _vector("negative_bad_crc", "crc_fail")
    status, _, err = _run(capsys, ["decode", vector["hex"]])
    assert status == 1
    assert "CRC" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["decode", "zz44"], "not hex"),
        (["decode", "2a4"], "odd number"),
        (["decode", "0a44"], "L-field"),
        (["decode", "0b4401"], "L-field"),
        (["decode", "2a44", "--key", "0011"], "32 hex digits"),
        (["decode", "2a44", "--keys", "/nonexistent/keys.txt"], "does not exist"),
    ],
)
def test_bad_input_one_line(capsys, argv, message):
    status, _, err = _run(capsys, argv)
    assert status == 1
    assert message in err
    assert "Traceback" not in err
    assert err.startswith("wmbus: ")


def test_bad_key_file_line(tmp_path, capsys):
    keys = tmp_path / "keys.txt"
    keys.write_text("# comment\n12345678 00112233\n")
    status, _, err = _run(capsys, ["decode", "0a4401020304050607", "--keys", str(keys)])
    assert status == 1
    assert "line 2" in err and str(keys) in err


def test_usage_errors_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["decode"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["decode", "00", "--key", "00" * 16, "--keys", "k.txt"])
    assert exc.value.code == 2


def test_stdin_lines_and_rtlwmbus_format(shared, capsys, monkeypatch):
    plain = _vector("plain")
    text = (
        f"# a comment\n\n{plain['hex']}\n"
        f"T1;1;1;2026-01-01 00:00:00;-50;-50;x;0x{plain['hex']}\n"
    )
    status, out, err = _run(capsys, ["decode", "-", "--json"], text, monkeypatch)
    assert status == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == json.loads(lines[1])


def test_help_is_fast_and_does_not_import_numba():
    code = (
        "import sys\nfrom sdr.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'numba' not in sys.modules, 'numba imported by --help'\n"
        "assert 'numpy' not in sys.modules, 'numpy imported by --help'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "decode" in result.stdout


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"WMBUS_JIT": "1"}, "kernels: numba JIT (WMBUS_JIT is set)"),
        ({"NUMBA_DISABLE_JIT": "1"}, "kernels: plain Python"),
    ],
)
def test_version_names_package_and_kernel_mode(env, says):
    result = subprocess.run(
        [sys.executable, "-m", "sdr.cli", "--version"],
        env={**os.environ, "WMBUS_JIT": "0", "NUMBA_DISABLE_JIT": "0", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first.startswith("wmbus-sdr 0.")
    assert second.startswith(says)
