"""Subjects and durable names are spelled only in contracts/: no string literal elsewhere."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("keyledger", "services")
# our subjects (a part of an f-string counts: f"keys.events.{x}" has "keys.events.") and
# the durables/tracking rows on our streams
LOOKS_OURS = re.compile(
    r"\b(keys|calls|notify)\.(events|cmd|query|recorded|verify)\b"
    r"|\b(keys-audit|notifier-keys|calllog-projection)\b"
)


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring nodes: prose may name a subject, code may not."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def scanned() -> list[Path]:
    """Every module of the scanned folders, subfolders included."""
    return [path for folder in SCANNED for path in sorted((ROOT / folder).rglob("*.py"))]


def offenders() -> list[str]:
    found: list[str] = []
    for path in scanned():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _docstrings(tree)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in skip
                and LOOKS_OURS.search(node.value)
            ):
                where = path.relative_to(ROOT)
                found.append(f"{where}:{node.lineno}: {node.value!r}")
    return found


def test_no_subject_or_durable_literal_outside_contracts() -> None:
    assert offenders() == [], "use the constants and subject functions of contracts/"


def test_the_scan_sees_literals() -> None:
    # guards against a scan that silently finds nothing (a wrong root, a broken regex)
    tree = ast.parse('x = "keys.events.>"\ny = f"calls.query.{n}"\nz = "keys-audit"')
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)]
    hits = {s for s in strings if isinstance(s, str) and LOOKS_OURS.search(s)}
    assert hits == {"keys.events.>", "calls.query.", "keys-audit"}
    assert any((ROOT / folder).is_dir() for folder in SCANNED)


def test_the_scan_reaches_into_subfolders() -> None:
    folders = {path.parent.relative_to(ROOT).as_posix() for path in scanned()}
    wings = ("cli", "client", "gateway", "local", "deploy", "audit")
    assert {f"keyledger/{wing}" for wing in wings} <= folders
