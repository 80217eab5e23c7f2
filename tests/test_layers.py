"""The import rule: stack imports nothing of ours but stack; dsp only dsp and
stack.frame; sdr anything; nobody imports sdr from stack or dsp.  Checked on the source
with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = ("stack", "dsp", "sdr", "tests", "benchmarks")
ALLOWED = {
    "stack": ("stack",),
    "dsp": ("dsp", "stack.frame"),
    "sdr": ("sdr", "dsp", "stack"),
}


def _imports(path: Path, package: str) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: inside the same package
                names.append(package + ("." + node.module if node.module else ""))
            elif node.module:
                names.append(node.module)
    return [n for n in names if n.split(".")[0] in OURS]


def _allowed(name: str, rules: tuple[str, ...]) -> bool:
    return any(name == rule or name.startswith(rule + ".") for rule in rules)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_import_direction(package):
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"no modules found in {package}/"
    bad = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files
        for name in _imports(path, package)
        if not _allowed(name, ALLOWED[package])
    ]
    assert not bad, "\n".join(bad)


def test_rule_catches_a_violation(tmp_path):
    """The checker itself must see a forbidden import (guard against a vacuous pass)."""
    fake = tmp_path / "probe.py"
    fake.write_text("from sdr import cli\nimport dsp.modulator\nfrom . import crc\n")
    names = _imports(fake, "stack")
    assert names == ["sdr", "dsp.modulator", "stack"]
    assert not _allowed("sdr", ALLOWED["stack"])
    assert not _allowed("dsp.modulator", ALLOWED["stack"])
