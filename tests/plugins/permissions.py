"""Least-privilege fixtures: `keyledger up --dev` per test module, or a bare server per test."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.drivers.permissions import System, bare_system, dev_system

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    """The whole system under its generated users, until the module's tests are done."""
    with dev_system(tmp_path_factory.mktemp("permissions") / "kl") as running:
        yield running


@pytest.fixture
async def bare(tmp_path: Path) -> AsyncIterator[System]:
    """A server with the generated users and the three streams, and nothing else."""
    async with bare_system(tmp_path) as running:
        yield running
