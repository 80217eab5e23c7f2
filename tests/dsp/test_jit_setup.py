"""dsp.jit_setup: numba runs our kernels without loading scipy.linalg or cffi.

Which modules a process has loaded depends on everything imported before, so the
receiver checks run in a fresh interpreter each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dsp.jit_setup import _import_without

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **env: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object last."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_receiver_runs_without_scipy_linalg_or_cffi():
    found = _run(
        """
        import json, sys
        import numpy as np
        from dsp.channel import _channelize_kernel
        from dsp.receiver import Receiver

        rx = Receiver(2.4e6, 868.95e6)
        rng = np.random.default_rng(7)
        n = 200_000
        iq = 0.05 * (rng.standard_normal(n) + 1j * rng.standard_normal(n))
        frames = rx.feed(iq.astype(np.complex64))
        loaded = {m: m in sys.modules for m in ("scipy.linalg", "cffi", "pycparser")}
        # The block is lifted: both import normally afterwards, and work.
        import cffi
        import scipy.linalg
        print(json.dumps({
            "loaded": loaded,
            "kernel_signatures": len(_channelize_kernel.signatures),
            "frames": len(frames),
            "det": float(scipy.linalg.det(2.0 * np.eye(3))),
            "cffi_sizeof_int": cffi.FFI().sizeof("int"),
        }))
        """,
        NUMBA_DISABLE_JIT="0",
        WMBUS_JIT="1",
    )
    assert found["kernel_signatures"] >= 1  # a compiled kernel really ran
    assert found["frames"] == 0  # noise only
    assert found["loaded"] == {"scipy.linalg": False, "cffi": False, "pycparser": False}
    assert found["det"] == pytest.approx(8.0)
    assert found["cffi_sizeof_int"] == 4


def test_without_the_block_numba_loads_scipy_linalg():
    """The control: numba's own start-up does load them (else the test above proves
    nothing, and dsp.jit_setup would no longer be needed)."""
    found = _run(
        """
        import json, sys
        from numba.core.registry import cpu_target

        cpu_target.target_context.refresh()
        print(json.dumps({m: m in sys.modules for m in ("scipy.linalg", "cffi")}))
        """,
        NUMBA_DISABLE_JIT="0",
        WMBUS_JIT="1",
    )
    assert found == {"scipy.linalg": True, "cffi": True}


def test_jit_disabled_leaves_numba_alone():
    found = _run(
        """
        import json, sys
        import dsp.channel, dsp.squelch
        from numba.core import config
        print(json.dumps([config.DISABLE_JIT, "numba.np.arraymath" in sys.modules]))
        """,
        NUMBA_DISABLE_JIT="1",
    )
    assert found == [1, False]


def _write(folder: Path, name: str, text: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(text))


@pytest.fixture
def probe_modules(tmp_path, monkeypatch):
    """A package ``wmbus_probe_pkg`` and modules that probe for it at import."""
    _write(tmp_path, "wmbus_probe_pkg", "VALUE = 42\n")
    _write(
        tmp_path,
        "wmbus_probe_mod",
        """
        try:
            import wmbus_probe_pkg
            FOUND = True
        except ImportError:
            FOUND = False
        """,
    )
    _write(tmp_path, "wmbus_probe_bad", "raise RuntimeError('broken module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for name in ("wmbus_probe_pkg", "wmbus_probe_mod", "wmbus_probe_bad"):
        sys.modules.pop(name, None)


def test_import_without_hides_the_package_then_lifts_the_block(probe_modules):
    _import_without("wmbus_probe_mod", "wmbus_probe_pkg")
    assert sys.modules["wmbus_probe_mod"].FOUND is False
    assert "wmbus_probe_pkg" not in sys.modules
    import wmbus_probe_pkg

    assert wmbus_probe_pkg.VALUE == 42


def test_import_without_lifts_the_block_when_the_import_fails(probe_modules):
    with pytest.raises(RuntimeError, match="broken module"):
        _import_without("wmbus_probe_bad", "wmbus_probe_pkg")
    assert "wmbus_probe_pkg" not in sys.modules
    import wmbus_probe_pkg

    assert wmbus_probe_pkg.VALUE == 42


def test_a_receiver_sets_numba_up_and_restores_its_optimisation_level(tmp_path):
    """Receiver() starts numba's target (runtime library at OPT 0) and puts OPT back,
    so that a kernel compiled afterwards is optimised as usual: its LLVM IR is the
    same as in a process where numba started on its own."""
    code = """
        import json
        import numpy as np
        from numba import njit
        from numba.core import config
        from numba.core.runtime import nrt

        if START:
            from dsp.receiver import Receiver
            Receiver(2.4e6, 868.95e6)
        started = bool(nrt.rtsys._init)

        @njit
        def scaled_sum(x):
            total = 0.0
            for v in x:
                total += 2.5 * v
            return total

        scaled_sum(np.ones(4))
        ir = scaled_sum.inspect_llvm(scaled_sum.signatures[0])
        print(json.dumps({"opt": int(config.OPT), "started": started,
                          "ir_lines": len(ir.splitlines())}))
    """
    jit = {"NUMBA_DISABLE_JIT": "0", "WMBUS_JIT": "1"}
    with_rx = _run("START = True\n" + textwrap.dedent(code), **jit)
    plain = _run("START = False\n" + textwrap.dedent(code), **jit)
    assert with_rx["started"] and not plain["started"]
    assert with_rx["opt"] == plain["opt"] == 3
    assert with_rx["ir_lines"] == plain["ir_lines"]
