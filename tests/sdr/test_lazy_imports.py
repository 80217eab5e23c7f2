"""``wmbus replay`` loads only what the run needs: no SigMF package, crypto or terminal
UI unless they are used (each costs megabytes of resident memory in every receiver).

Each case runs the real command in a fresh interpreter (stdout and stderr are pipes,
not a terminal) and lists the modules it ended with.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RECORDINGS = ROOT / "recordings"
META = RECORDINGS / "multimode_868.95M_2400k.sigmf-meta"
KEYS = RECORDINGS / "keys.txt"
N_TELEGRAMS = 10  # in the bundled recording


def _replay_modules(argv: list[str], tmp_path: Path) -> tuple[str, set[str]]:
    """Run ``wmbus replay ARGV`` in a new process; its stdout and final modules."""
    listing = tmp_path / "modules.json"
    code = f"""
        import json, sys
        from sdr.cli import main
        status = main({["replay", *argv]!r})
        with open({str(listing)!r}, "w") as fh:
            json.dump({{"status": status, "modules": sorted(sys.modules)}}, fh)
        """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, "NUMBA_DISABLE_JIT": "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(listing.read_text())
    assert found["status"] == 0, result.stderr
    return result.stdout, set(found["modules"])


def _loaded(modules: set[str], package: str) -> bool:
    return any(m == package or m.startswith(package + ".") for m in modules)


NEVER_FOR_REPLAY = ("sigmf", "jsonschema", "rich", "scipy.linalg", "cffi")


def test_raw_file_without_keys_loads_no_sigmf_crypto_or_rich(tmp_path):
    raw = tmp_path / "capture_868.95M_2400k.cu8"
    shutil.copyfile(META.with_suffix(".sigmf-data"), raw)
    stdout, modules = _replay_modules([str(raw), "--output", "jsonl"], tmp_path)
    assert len(stdout.splitlines()) == N_TELEGRAMS  # the receiver really ran
    assert _loaded(modules, "dsp.receiver")
    for package in (*NEVER_FOR_REPLAY, "cryptography"):
        assert not _loaded(modules, package), package


def test_sigmf_with_keys_loads_crypto_but_no_sigmf_package(tmp_path):
    stdout, modules = _replay_modules(
        [str(META), "--keys", str(KEYS), "--output", "jsonl"], tmp_path
    )
    records = [json.loads(line) for line in stdout.splitlines()]
    assert len(records) == N_TELEGRAMS
    assert [r["error"] for r in records] == [None] * N_TELEGRAMS
    # The lazily imported AES did its three jobs: CBC (mode 5), CMAC key derivation
    # + CBC (mode 7) and CTR (ELL, where the TPL says mode 0).
    decrypted = {r["security_mode"] for r in records if r["decrypted"]}
    assert decrypted == {0, 5, 7}
    assert _loaded(modules, "cryptography")
    for package in NEVER_FOR_REPLAY:
        assert not _loaded(modules, package), package


def test_writing_sigmf_still_uses_the_package(tmp_path):
    """The control for the cases above: a transmit to SigMF does import them."""
    out = tmp_path / "out.sigmf-meta"
    hex_ = "244493440411262035087a07000000046e3d010000426c5e39446e0a050000045a81010000"
    code = f"""
        import json, sys
        from sdr.cli import main
        status = main(["transmit", "--mode", "T1", "--out", {str(out)!r}, {hex_!r}])
        loaded = [m in sys.modules for m in ("sigmf", "jsonschema")]
        print(json.dumps({{"status": status, "loaded": loaded}}))
        """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "status": 0,
        "loaded": [True, True],
    }
    assert out.is_file()
