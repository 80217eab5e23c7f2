"""dsp.kernels: the ahead-of-time build, its argument checks, and its equality with
numba's JIT.

The per-module twin tests (test_channel, test_fsk, ...) hold each kernel equal to its
numpy reference in whatever mode this process runs (after ``make test``: the
ahead-of-time build).  Here: the checks that stand between Python and the build's
unchecked entry points, the choice of mode, and the whole receiver giving identical
output compiled both ways.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from dsp import kernels
from dsp.kernels import _ArraySpec, _checked, _ScalarSpec, parse_arguments

ROOT = Path(__file__).resolve().parents[2]
META = ROOT / "recordings" / "multimode_868.95M_2400k.sigmf-meta"

for _name in kernels.KERNEL_MODULES:
    importlib.import_module(_name)


def _built_extension() -> Path | None:
    for folder in kernels.aot_paths():
        for path in sorted(folder.glob(kernels.AOT_MODULE + ".*")):
            if path.suffix in (".so", ".pyd"):
                return path
    return None


needs_build = pytest.mark.skipif(
    _built_extension() is None,
    reason="kernels not built ahead of time (python -m dsp.build_kernels; needs gcc)",
)


# -- signatures ------------------------------------------------------------------------
def test_every_kernel_declared_with_one_spec_per_parameter():
    assert len(kernels.REGISTRY) == 9
    for entry in kernels.REGISTRY.values():
        specs = parse_arguments(entry.signature)
        assert len(specs) == entry.py_func.__code__.co_argcount, entry.export_name
        # Every export name is unique and says where the kernel lives.
        stem, name = entry.export_name.split("__", 1)
        assert entry.py_func.__module__ == f"dsp.{stem}"
        assert entry.py_func.__name__ == name


def test_parse_arguments_reads_layouts_and_scalars():
    specs = parse_arguments("UniTuple(i8, 3)(c8[::1], f4[:, :, ::1], f8[:], u8, b1)")
    assert specs == [
        _ArraySpec(np.dtype(np.complex64), 1, True),
        _ArraySpec(np.dtype(np.float32), 3, True),
        _ArraySpec(np.dtype(np.float64), 1, False),
        _ScalarSpec("u8"),
        _ScalarSpec("b1"),
    ]
    assert parse_arguments("Tuple((i8, f8))(c16[::1])") == [
        _ArraySpec(np.dtype(np.complex128), 1, True)
    ]
    assert parse_arguments("void()") == []
    for bad in ("f8(x9[::1])", "f8(c8[::1]", "nonsense"):
        with pytest.raises(ValueError):
            parse_arguments(bad)


# -- the argument check ----------------------------------------------------------------
def _fake_kernel(z, n, gain, flag, out):
    """A stand-in for an extension function: records what it was given."""
    return (z, n, gain, flag, out)


SIG = "void(c8[::1], i8, f8, b1, f8[:, ::1])"


def _good_args():
    return [
        np.zeros(8, np.complex64),
        3,
        0.5,
        True,
        np.zeros((2, 4), np.float64),
    ]


def test_checked_passes_good_arguments_through_unchanged():
    calls = []

    def compiled(*args):
        calls.append(args)
        return 42

    run = _checked(compiled, _fake_kernel, SIG)
    args = _good_args()
    assert run(*args) == 42
    assert all(a is b for a, b in zip(calls[0], args, strict=True))
    # numpy scalars and ints where floats go are accepted, as numba accepts them.
    assert run(args[0], np.int64(3), 1, np.bool_(False), args[4]) == 42
    assert run.py_func is _fake_kernel
    assert run.__name__ == "_fake_kernel"


@pytest.mark.parametrize(
    ("index", "value", "message"),
    [
        (
            0,
            np.zeros(8, np.complex128),
            "argument 1 must be a C-contiguous 1-d complex64 ",
        ),
        (0, np.zeros(16, np.complex64)[::2], "not C-contiguous"),
        (0, np.zeros((2, 4), np.complex64), "not a 2-d complex64 array"),
        (0, [0j] * 8, "not list"),
        (1, 3.0, "argument 2 must be an int64 scalar, not float"),
        (1, True, "not bool"),
        (2, "0.5", "argument 3 must be a float64 scalar, not str"),
        (3, 1, "argument 4 must be a bool scalar, not int"),
        (4, np.zeros((4, 2), np.float64).T, "argument 5"),
        (4, np.zeros(8, np.float64), "argument 5"),
    ],
)
def test_checked_rejects_what_would_crash_or_misread(index, value, message):
    calls = []
    run = _checked(lambda *a: calls.append(a), _fake_kernel, SIG)
    args = _good_args()
    args[index] = value
    with pytest.raises(TypeError, match=re.escape(message)):
        run(*args)
    assert calls == []  # the unchecked code never saw it


def test_checked_rejects_unaligned_arrays():
    raw = np.zeros(8 * 8 + 1, np.uint8)
    unaligned = np.frombuffer(raw.data, dtype=np.complex64, count=8, offset=1)
    assert not unaligned.flags.aligned
    run = _checked(lambda *a: None, _fake_kernel, SIG)
    args = _good_args()
    args[0] = unaligned
    with pytest.raises(TypeError, match="argument 1"):
        run(*args)


def test_checked_wrong_argument_count_is_a_type_error():
    run = _checked(lambda *a: None, _fake_kernel, SIG)
    with pytest.raises(TypeError):
        run(*_good_args()[:4])


# -- choosing the mode -----------------------------------------------------------------
def test_no_build_means_jit(monkeypatch, tmp_path):
    monkeypatch.setattr(kernels, "aot_paths", lambda: [tmp_path])
    module, why = kernels._load_aot()
    assert module is None
    assert "not built" in why


def test_broken_build_is_not_loaded(monkeypatch, tmp_path):
    suffix = kernels.importlib.machinery.EXTENSION_SUFFIXES[0]
    (tmp_path / (kernels.AOT_MODULE + suffix)).write_bytes(b"not an ELF file")
    monkeypatch.setattr(kernels, "aot_paths", lambda: [tmp_path])
    module, why = kernels._load_aot()
    assert module is None
    assert "does not load" in why


@needs_build
def test_stale_build_is_not_loaded(monkeypatch, tmp_path):
    built = _built_extension()
    assert built is not None
    shutil.copyfile(built, tmp_path / built.name)
    monkeypatch.setattr(kernels, "aot_paths", lambda: [tmp_path])
    module, why = kernels._load_aot()
    assert module is not None, why  # the copy is current
    monkeypatch.setattr(kernels, "source_stamp", lambda: 12345)
    module, why = kernels._load_aot()
    assert module is None
    assert "stale" in why


def test_source_stamp_follows_the_kernel_sources(monkeypatch, tmp_path):
    for name in kernels.KERNEL_MODULES:
        stem = name.rsplit(".", 1)[1] + ".py"
        shutil.copyfile(kernels._HERE / stem, tmp_path / stem)
    monkeypatch.setattr(kernels, "_HERE", tmp_path)
    first = kernels.source_stamp()
    assert first == kernels.source_stamp()
    with open(tmp_path / "fsk.py", "a") as fh:
        fh.write("\n# an edit\n")
    edited = kernels.source_stamp()
    assert edited != first
    # Built for another CPU: stale too.
    monkeypatch.setattr(kernels, "_cpu_features", lambda: b"flags : fpu sse2")
    assert kernels.source_stamp() != edited


def test_cpu_features_are_read():
    features = kernels._cpu_features()
    assert isinstance(features, bytes)
    assert features  # a flags line on Linux, the machine name elsewhere


@needs_build
def test_rebuild_if_stale_does_nothing_when_current():
    result = subprocess.run(
        [sys.executable, "-m", "dsp.build_kernels", "--if-stale"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout


def test_build_without_a_compiler_says_so_and_fails(tmp_path):
    env = {**os.environ, "PATH": str(tmp_path), "CC": "no-such-compiler"}
    result = subprocess.run(
        [sys.executable, "-m", "dsp.build_kernels", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "no C compiler" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []


# -- ahead of time == JIT, end to end --------------------------------------------------
def _replay(tmp_path: Path, **env: str) -> tuple[list[dict], dict]:
    listing = tmp_path / f"modules-{len(env)}-{env.get('WMBUS_JIT', '')}.json"
    code = f"""
        import json, sys
        from sdr.cli import main
        from dsp import kernels
        status = main(["replay", {str(META)!r}, "--output", "jsonl"])
        with open({str(listing)!r}, "w") as fh:
            json.dump({{"status": status, "mode": kernels.MODE,
                       "modules": sorted(sys.modules)}}, fh)
        """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, "NUMBA_DISABLE_JIT": "0", **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(listing.read_text())
    assert found["status"] == 0
    return [json.loads(line) for line in result.stdout.splitlines()], found


@needs_build
def test_ahead_of_time_build_decodes_exactly_as_the_jit(tmp_path):
    aot, aot_info = _replay(tmp_path, WMBUS_JIT="0")
    jit, jit_info = _replay(tmp_path, WMBUS_JIT="1")
    assert aot_info["mode"] == "aot"
    assert jit_info["mode"] == "jit"
    assert len(aot) == 10
    assert aot == jit  # every field: bytes, times, offsets, levels
    # The point of the build: the receiver ran without numba or LLVM in the process.
    for package in ("numba", "llvmlite"):
        assert not any(m.split(".")[0] == package for m in aot_info["modules"])
    assert any(m.split(".")[0] == "numba" for m in jit_info["modules"])


@needs_build
def test_a_stale_build_does_not_hide_a_current_one(monkeypatch, tmp_path):
    built = _built_extension()
    assert built is not None
    stale, current = tmp_path / "stale", tmp_path / "current"
    stale.mkdir()
    current.mkdir()
    (stale / built.name).write_bytes(b"not an ELF file")
    shutil.copyfile(built, current / built.name)
    monkeypatch.setattr(kernels, "aot_paths", lambda: [stale, current])
    module, where = kernels._load_aot()
    assert module is not None
    assert where == str(current / built.name)
