"""How the hot loops are compiled: ahead of time when that build is present, else
numba's cached JIT.

Every kernel is written once, as a numba function (``@kernel(signature)`` in the
module that owns its algorithm, beside its numpy reference twin).  It then runs in
one of three ways, chosen once per process, when this module is imported:

    "aot"     ``python -m dsp.build_kernels`` (``make demo``, ``make test``) built all
              kernels with numba's ahead-of-time compiler into one extension module,
              ``_kernels_aot``, and its stamp matches the kernel modules as they are
              now (and this CPU).  numba and LLVM are then never imported: that is
              ~110 MiB of a receiver's ~150 MiB peak resident memory under the JIT
              (LLVM's library alone pages in 40-60 MiB), and no compile or cache
              load at start-up.
    "jit"     no build, a stale one, or ``WMBUS_JIT=1``: ``numba.njit(cache=True,
              nogil=True)``, compiled on first use and cached in ``NUMBA_CACHE_DIR``.
    "python"  ``NUMBA_DISABLE_JIT=1``: numba hands back the plain Python functions
              (CI runs the kernel tests this way, for coverage and debugging).

The extension's functions convert their arguments without checking them: an array of
the wrong dtype crashes the process, and a strided one is read as if it were
contiguous.  So in "aot" mode each kernel is wrapped in a check of every argument
against its declared signature, and a wrong one raises ``TypeError`` (as numba's own
dispatcher would, or would compile another specialisation).  The check costs about
half a microsecond per call; kernels are called per block of samples or per candidate
frame, ~700 times per second of signal.

A kernel's signature is numba's string form, e.g. ``"f8(c8[::1], i8)"``, with the
dtype codes of ``_DTYPES``.  Arrays are C-contiguous (``[::1]`` or ``[:, ::1]``) or
any layout (``[:]``).  Functions that only kernels call are marked ``@helper``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import platform
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

import numpy as np

__all__ = [
    "KERNEL_MODULES",
    "MODE",
    "MODE_DETAIL",
    "MODE_NAMES",
    "AOT_MODULE",
    "Kernel",
    "REGISTRY",
    "aot_paths",
    "helper",
    "kernel",
    "parse_arguments",
    "source_stamp",
    "start",
]

F = TypeVar("F", bound=Callable[..., Any])

# Modules that define kernels, in import order; their text makes up the source stamp.
KERNEL_MODULES = ("dsp.channel", "dsp.squelch", "dsp.fsk", "dsp.timing", "dsp.sync")
AOT_MODULE = "_kernels_aot"
_DTYPES = {
    "b1": np.dtype(np.bool_),
    "i8": np.dtype(np.int64),
    "u8": np.dtype(np.uint64),
    "f4": np.dtype(np.float32),
    "f8": np.dtype(np.float64),
    "c8": np.dtype(np.complex64),
    "c16": np.dtype(np.complex128),
}
_HERE = Path(__file__).resolve().parent


class Kernel(NamedTuple):
    """One kernel as declared: what ``dsp.build_kernels`` compiles and exports."""

    export_name: str  # module stem + "__" + function name, unique in the extension
    signature: str
    py_func: Callable[..., Any]


# Every @kernel seen in this process, by export name.
REGISTRY: dict[str, Kernel] = {}


def source_stamp() -> int:
    """A checksum of what the build depends on: the kernel modules' text, numpy's
    version (the extension uses its C API) and this CPU's instruction-set features
    (the code is built for the machine it is built on; a checkout shared with another
    machine must not run it there).  The build stores it; a differing stamp is stale."""
    crc = zlib.crc32(np.__version__.encode())
    crc = zlib.crc32(_cpu_features(), crc)
    size = 0
    for name in KERNEL_MODULES:
        data = (_HERE / (name.rsplit(".", 1)[1] + ".py")).read_bytes()
        crc = zlib.crc32(data, crc)
        size += len(data)
    # Two independent checksums in one int64 (positive, so any numba int type holds it).
    return ((crc << 31) ^ zlib.adler32(f"{size}:{crc}".encode())) & (2**62 - 1)


def _cpu_features() -> bytes:
    """The CPU's feature list as Linux reports it (x86 "flags", arm "Features"), or
    just the machine name elsewhere."""
    try:
        with open("/proc/cpuinfo", "rb") as fh:
            for line in fh:
                key = line.split(b":", 1)[0].strip()
                if key in (b"flags", b"Features"):
                    return line
    except OSError:
        pass
    return platform.machine().encode()


def aot_paths() -> list[Path]:
    """Directories searched for the extension, in order: the ``dsp`` package itself
    (where a development install builds it), then a per-user cache for installs whose
    package directory is read-only."""
    paths = [_HERE]
    try:
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    except RuntimeError:  # no home directory to be found: only the package
        return paths
    return [*paths, cache / "wmbus-sdr" / "kernels"]


def _load_aot() -> tuple[Any, str]:
    """The first current build found, else (None, why none was used)."""
    problems = []
    for folder in aot_paths():
        for suffix in importlib.machinery.EXTENSION_SUFFIXES:
            path = folder / (AOT_MODULE + suffix)
            if not path.is_file():
                continue
            module, problem = _load_one(path)
            if module is not None:
                return module, str(path)
            problems.append(problem)
    if problems:
        return None, "; ".join(problems)
    return None, "not built (python -m dsp.build_kernels)"


def _load_one(path: Path) -> tuple[Any, str]:
    try:
        spec = importlib.util.spec_from_file_location(AOT_MODULE, path)
        if spec is None or spec.loader is None:
            return None, f"{path} is not an extension module"
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except (ImportError, OSError) as exc:
        return None, f"{path} does not load ({exc})"
    try:
        stamp = int(module.source_stamp())
    except (AttributeError, TypeError, ValueError):
        return None, f"{path} has no source stamp"
    if stamp != source_stamp():
        return None, f"{path} is stale (kernel sources changed since built)"
    return module, ""


def _choose_mode() -> tuple[str, Any, str]:
    if os.environ.get("NUMBA_DISABLE_JIT", "0") not in ("", "0"):
        return "python", None, "NUMBA_DISABLE_JIT is set"
    if os.environ.get("WMBUS_JIT", "0") not in ("", "0"):
        return "jit", None, "WMBUS_JIT is set"
    module, where = _load_aot()
    if module is None:
        return "jit", None, where
    return "aot", module, where


# MODE: "aot", "jit" or "python" (see the module docstring); MODE_DETAIL says why.
MODE, _aot, MODE_DETAIL = _choose_mode()
# Each MODE as reports (wmbus --version, wmbus bench) name it.
MODE_NAMES = {
    "aot": "compiled ahead of time",
    "jit": "numba JIT",
    "python": "plain Python",
}


def kernel(signature: str) -> Callable[[F], F]:
    """Declare a kernel called from Python, with its one numba signature."""

    def declare(py_func: F) -> F:
        stem = py_func.__module__.rsplit(".", 1)[-1]
        export_name = f"{stem}__{py_func.__name__}"
        REGISTRY[export_name] = Kernel(export_name, signature, py_func)
        if MODE == "aot":
            compiled = getattr(_aot, export_name, None)
            if compiled is None:  # the stamp matched, so this cannot be; be loud
                raise ImportError(f"{AOT_MODULE} lacks kernel {export_name}")
            return cast(F, _checked(compiled, py_func, signature))
        return _jit(py_func)

    return declare


def helper(py_func: F) -> F:
    """Declare a function that only kernels call (compiled into them)."""
    if MODE == "aot":
        return py_func  # already inlined into the extension's kernels
    return _jit(py_func)


def start() -> None:
    """Do the kernels' one-time set-up now (numba's target, in "jit" mode), so that
    the first block of a live stream is not held up by it."""
    if MODE == "jit":
        from dsp.jit_setup import start_numba

        start_numba()


def _jit(py_func: F) -> F:
    from numba import njit

    from dsp.jit_setup import prepare_numba

    prepare_numba()  # before any kernel runs: spares scipy.linalg, cffi
    # A numba Dispatcher is called as py_func is, but is not typed as it.
    return cast(F, njit(cache=True, nogil=True)(py_func))


class _ArraySpec(NamedTuple):
    dtype: np.dtype[Any]
    ndim: int
    contiguous: bool

    def accepts(self, value: object) -> bool:
        return (
            isinstance(value, np.ndarray)
            and value.dtype == self.dtype
            and value.ndim == self.ndim
            and value.flags.aligned
            and (not self.contiguous or value.flags.c_contiguous)
        )

    def __str__(self) -> str:
        layout = "C-contiguous " if self.contiguous else ""
        return f"a {layout}{self.ndim}-d {self.dtype} array"


class _ScalarSpec(NamedTuple):
    code: str

    def types(self) -> tuple[type, ...]:
        if self.code == "b1":
            return (bool, np.bool_)
        if self.code in ("i8", "u8"):
            return (int, np.integer)
        return (int, float, np.integer, np.floating)

    def accepts(self, value: object) -> bool:
        if self.code != "b1" and isinstance(value, (bool, np.bool_)):
            return False
        return isinstance(value, self.types())

    def __str__(self) -> str:
        dtype = str(_DTYPES[self.code])
        return f"{'an' if dtype[0] in 'aeiou' else 'a'} {dtype} scalar"


def parse_arguments(signature: str) -> list[_ArraySpec | _ScalarSpec]:
    """The argument specs of a numba signature string such as
    ``"UniTuple(i8, 3)(c8[::1], f4[:, ::1], i8)"``."""
    text = signature.replace(" ", "")
    if not text.endswith(")"):
        raise ValueError(f"not a signature: {signature!r}")
    depth = 0
    start = -1
    for i in range(len(text) - 1, -1, -1):
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            depth -= 1
            if depth == 0:
                start = i
                break
    if start < 0:
        raise ValueError(f"unbalanced parentheses in {signature!r}")
    args: list[str] = []
    depth = 0
    current = ""
    for ch in text[start + 1 : -1]:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            args.append(current)
            current = ""
        else:
            current += ch
    if current:
        args.append(current)
    specs: list[_ArraySpec | _ScalarSpec] = []
    for arg in args:
        code, _, dims = arg.partition("[")
        if code not in _DTYPES:
            raise ValueError(f"unknown dtype code {code!r} in {signature!r}")
        if not dims:
            specs.append(_ScalarSpec(code))
            continue
        axes = dims.rstrip("]").split(",")
        specs.append(_ArraySpec(_DTYPES[code], len(axes), axes[-1] == "::1"))
    return specs


def _checked(compiled: Callable[..., Any], py_func: Callable[..., Any], signature: str):
    """``compiled`` behind a check of every argument against ``signature``.

    The check is generated as one Python expression per kernel (as ``dataclasses``
    generates ``__init__``): ~0.5 us per call for a 4-argument kernel, against ~3 us
    for a loop over the specs; the receiver makes ~700 kernel calls per second of
    signal.  Only a failing call takes the slow path that names the bad argument.
    """
    specs = parse_arguments(signature)
    name = py_func.__name__
    params = [f"a{i}" for i in range(len(specs))]
    env: dict[str, Any] = {"compiled": compiled, "ndarray": np.ndarray}
    tests = []
    for i, spec in enumerate(specs):
        a = params[i]
        if isinstance(spec, _ArraySpec):
            env[f"d{i}"] = spec.dtype
            test = (
                f"isinstance({a}, ndarray) and ({a}.dtype is d{i} or {a}.dtype == d{i})"
                f" and {a}.ndim == {spec.ndim} and {a}.flags.aligned"
            )
            if spec.contiguous:
                test += f" and {a}.flags.c_contiguous"
        else:
            env[f"t{i}"] = spec.types()
            test = f"isinstance({a}, t{i})"
            if spec.code != "b1":  # bool is an int to Python, not to the kernel
                env["bools"] = (bool, np.bool_)
                test += f" and not isinstance({a}, bools)"
        tests.append(f"({test})")
    args = ", ".join(params)
    source = (
        f"def {name}({args}):\n"
        f"    if {' and '.join(tests) or 'True'}:\n"
        f"        return compiled({args})\n"
        f"    raise mismatch(({args}{',' if len(params) == 1 else ''}))\n"
    )

    def mismatch(values: tuple[Any, ...]) -> TypeError:
        for index, (value, spec) in enumerate(zip(values, specs, strict=True)):
            if not spec.accepts(value):
                got = (
                    f"a {value.ndim}-d {value.dtype} array"
                    + ("" if value.flags.c_contiguous else " (not C-contiguous)")
                    if isinstance(value, np.ndarray)
                    else type(value).__name__
                )
                return TypeError(
                    f"{name}() argument {index + 1} must be {spec}, not {got}"
                )
        return TypeError(f"{name}() arguments do not match {signature}")

    env["mismatch"] = mismatch
    exec(source, env)  # noqa: S102  # text built above from a parsed signature only
    run = env[name]
    run.__qualname__ = py_func.__qualname__
    run.__doc__ = py_func.__doc__
    run.__module__ = py_func.__module__
    run.py_func = py_func  # as on a numba dispatcher
    return run
