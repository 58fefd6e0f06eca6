"""Node.js for the tests that check the contracts from another language: node, its packages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
TESTS_NODE = REPO / "tests" / "node"  # the auditor script, ajv, the AsyncAPI parser
VERIFIER = REPO / "verifiers" / "node"  # the Node.js verifier written from AUDITING.md
NPM_TIMEOUT = 300


def node_with(folder: Path, *packages: str, why: str) -> str:
    """The `node` binary, once `folder`'s packages are installed (`npm ci` from its
    package-lock.json when one of `packages` is missing; node_modules/ is gitignored).

    Without node the test skips, saying `why` it needs it; node without npm is a failure.
    """
    node = shutil.which("node")
    if node is None:
        pytest.skip(f"node is not on PATH: {why} needs Node.js 18 or later")
    if any(not (folder / "node_modules" / p).is_dir() for p in packages):
        npm = shutil.which("npm")
        assert npm is not None, f"node is on PATH but npm is not: cannot install {packages}"
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=folder, check=True, timeout=NPM_TIMEOUT
        )
    return node
