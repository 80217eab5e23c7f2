"""Numba start-up without scipy.linalg and cffi: about 14 MB less memory per receiver.

The first time numba compiles or loads a kernel it refreshes its CPU target, which
imports two modules that probe for optional packages at import time:

    numba.np.arraymath            import scipy.linalg.cython_blas (is there a BLAS?)
                                  loads scipy.linalg, OpenBLAS and scipy's array-API
                                  layer (numpy.f2py included): +11-15 MB, ~0.2 s
    numba.core.typing.cffi_utils  import cffi; cffi.FFI() (cffi functions in kernels?)
                                  loads cffi and pycparser: +1.7 MB

Our kernels need neither.  The answers stay for the life of the process, and the BLAS
one decides only how ``np.correlate`` / ``np.convolve`` compiled *inside* a kernel take
their inner products (BLAS dot, else a plain loop); ours call neither there, and
``np.dot`` or ``np.linalg`` in a kernel would still import scipy.linalg by themselves
when compiled.  No kernel of ours takes a cffi function.  So ``prepare_numba``
imports each probing module once, early, with its package blocked in ``sys.modules``
(the probe then sees an ImportError and answers "absent"), and lifts the block at
once.  Only those two modules are imported here, not the whole target refresh (NRT
compile, registries: +44 MB), so a process that imports a kernel module but never
runs a kernel does not pay for that.

Only the JIT path uses this module (``dsp.kernels`` in "jit" mode): it calls
``prepare_numba()`` before declaring each kernel, so before the first kernel runs, and
``start_numba()`` when a receiver is made.  The ahead-of-time build loads no numba.
"""

from __future__ import annotations

import importlib
import sys
import threading

__all__ = ["prepare_numba", "start_numba"]

# numba module whose import probes for a package -> the package to hide from it.
_PROBES = {
    "numba.np.arraymath": "scipy.linalg",
    "numba.core.typing.cffi_utils": "cffi",
}
_lock = threading.Lock()
_done = False


def prepare_numba() -> None:
    """Let numba's probes for scipy.linalg and cffi fail, so neither is loaded for it.

    Does nothing when the JIT is off (``NUMBA_DISABLE_JIT=1``: nothing will be
    compiled).  A probe that has already run, or whose package is already imported
    (it then costs nothing), is left alone.  The block is always lifted, so a later
    ``import scipy.linalg`` or ``import cffi`` anywhere works as usual.  Another
    thread importing one of those two packages during this call would fail: kernel
    modules are imported at start-up, before any threads of ours.
    """
    global _done
    with _lock:
        if _done:
            return
        _done = True
        from numba.core import config

        # Set from NUMBA_DISABLE_JIT when numba loads (not visible to type checkers).
        if getattr(config, "DISABLE_JIT", False):
            return
        for probing, package in _PROBES.items():
            if probing not in sys.modules and package not in sys.modules:
                _import_without(probing, package)


def _import_without(module: str, package: str) -> None:
    """Import ``module`` while ``import package`` raises ImportError."""
    # None in sys.modules is Python's documented way to make an import fail.
    sys.modules[package] = None  # type: ignore[assignment]
    try:
        importlib.import_module(module)
    finally:
        if package in sys.modules and sys.modules[package] is None:
            del sys.modules[package]


def start_numba() -> None:
    """Set up numba's CPU target now rather than at the first kernel call.

    The set-up (numba's runtime library compiled, its registries filled: ~35 MiB,
    0.5-1 s) is the largest single step of a receiver's start.  A receiver does it
    when it is made, so that the first block of a live stream is not held up by it
    while the radio keeps sending.

    The runtime library is a handful of reference-counting helpers; it is compiled
    here without LLVM's optimiser (numba's documented ``OPT`` setting, 0 for this one
    compile and restored at once), which spares the process ~5 MiB of LLVM code
    paged in for optimising it.  Our kernels come from numba's cache as machine
    code, or, when not cached yet, are compiled at the usual level.  Does nothing
    with the JIT off.
    """
    prepare_numba()
    from numba.core import config

    if getattr(config, "DISABLE_JIT", False):
        return
    from numba.core.registry import cpu_target

    # The target machine is made here, at the usual optimisation level, before OPT
    # changes: it generates the code of every kernel compiled later.
    context = cpu_target.target_context
    # numba.core.config makes its settings at import time (from the environment,
    # through globals()), so no OPT is declared for a type checker to see.
    usual = config.OPT  # type: ignore[attr-defined]
    try:
        config.OPT = type(usual)(0)  # type: ignore[attr-defined]
    except (TypeError, ValueError):  # a numba whose OPT is built differently
        usual = None
    try:
        # refresh() is numba's documented hook for loading its registries (and, on
        # the CPU target, initialising its runtime); it does nothing a second time.
        context.refresh()
    finally:
        if usual is not None:
            config.OPT = usual  # type: ignore[attr-defined]
