"""Compile every kernel ahead of time into one extension module (``dsp.kernels``).

    python -m dsp.build_kernels [--out DIR] [--if-stale]

Run by ``make demo``, ``make test`` and ``make bench``.  Needs numba and a C compiler
(Debian: ``gcc``, ``python3-dev``), both only here: the receiver then runs the machine
code without importing numba.  Takes about a quarter of a minute.  The code is built
for this machine's CPU, as numba's JIT would; the stamp records the CPU's features, so
another machine sharing the checkout rebuilds or JIT-compiles instead of running it.
Exit status 0 when built, 1 with one line saying why not; the receiver then
JIT-compiles as before.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

if __name__ == "__main__":
    # Declare the kernels as numba functions (the helpers they call must be numba
    # functions for the compiler to inline them), whatever build already exists.
    os.environ["WMBUS_JIT"] = "1"
    os.environ.pop("NUMBA_DISABLE_JIT", None)

from dsp import kernels  # noqa: E402


def build(out_dir: Path) -> Path:
    """Compile all kernels into ``out_dir``; returns the extension's path.  Only in a
    process whose kernels are numba functions (``python -m dsp.build_kernels``)."""
    if kernels.MODE != "jit":
        raise RuntimeError(f"kernels are in {kernels.MODE!r} mode here, not 'jit'")
    for name in kernels.KERNEL_MODULES:
        importlib.import_module(name)
    if not kernels.REGISTRY:
        raise RuntimeError("no kernels declared")
    with warnings.catch_warnings():
        # numba.pycc warns of its planned replacement; it still works (numba pinned).
        warnings.simplefilter("ignore")
        from numba.pycc import CC

    stamp = kernels.source_stamp()
    out_dir.mkdir(parents=True, exist_ok=True)
    # Build in a scratch directory and move the result into place, so a reader never
    # sees a half-written extension.
    with tempfile.TemporaryDirectory(prefix="wmbus-kernels-") as scratch:
        cc = CC(kernels.AOT_MODULE)
        cc.output_dir = scratch
        cc.verbose = False
        cc.target_cpu = "host"

        def source_stamp() -> int:
            return stamp

        cc.export("source_stamp", "i8()")(source_stamp)
        for entry in kernels.REGISTRY.values():
            cc.export(entry.export_name, entry.signature)(entry.py_func)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cc.compile()
        built = list(Path(scratch).glob(kernels.AOT_MODULE + "*"))
        built = [p for p in built if p.suffix in (".so", ".pyd")]
        if len(built) != 1:
            raise RuntimeError(f"numba.pycc produced {built!r}")
        target = out_dir / built[0].name
        staged = out_dir / (built[0].name + ".tmp")
        shutil.copyfile(built[0], staged)
        os.replace(staged, target)
    return target


def _default_out() -> Path:
    for folder in kernels.aot_paths():
        if os.access(folder, os.W_OK) or not folder.exists():
            return folder
    return kernels.aot_paths()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dsp.build_kernels", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, help="directory for the extension")
    parser.add_argument(
        "--if-stale",
        action="store_true",
        help="do nothing when a current build is already found",
    )
    args = parser.parse_args(argv)
    if args.if_stale and args.out is None:
        module, where = kernels._load_aot()
        if module is not None:
            print(f"wmbus: kernels up to date in {where}")
            return 0
    out = args.out or _default_out()
    if shutil.which(os.environ.get("CC", "cc")) is None and shutil.which("gcc") is None:
        print(
            "wmbus: kernels not built ahead of time: no C compiler "
            "(Debian: apt-get install gcc); they will be JIT-compiled",
            file=sys.stderr,
        )
        return 1
    try:
        path = build(out)
    except Exception as exc:  # any compiler failure: say so, the JIT still works
        print(
            f"wmbus: kernels not built ahead of time ({type(exc).__name__}: {exc}); "
            "they will be JIT-compiled",
            file=sys.stderr,
        )
        return 1
    print(f"wmbus: {len(kernels.REGISTRY)} kernels compiled into {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
