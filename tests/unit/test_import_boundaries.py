"""Arrows that must not exist: the SDK and the gateway wing need contracts/, never services/."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import contracts
import keyledger

KEYLEDGER = Path(keyledger.__file__).parent


def modules_of(package: str) -> tuple[str, ...]:
    """`package` and every module below it, found on disk (nothing imported here)."""
    folder = KEYLEDGER.joinpath(*package.split(".")[1:])
    found = pkgutil.walk_packages([str(folder)], prefix=f"{package}.")
    return (package, *sorted(m.name for m in found))


# what a gateway installs and imports: the SDK and the whole gateway package
GATEWAY_SIDE = modules_of("keyledger.client") + modules_of("keyledger.gateway")
CONTRACTS = tuple(f"contracts.{m.name}" for m in pkgutil.iter_modules(contracts.__path__))


def loaded_by(modules: tuple[str, ...]) -> list[str]:
    """Every module a fresh interpreter holds after importing `modules`, transitively."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {list(modules)!r}: importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    # a fresh interpreter: this one has long since imported the services for other tests
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    found: list[str] = json.loads(done.stdout)
    return found


def under(found: list[str], package: str) -> list[str]:
    return [m for m in found if m == package or m.startswith(f"{package}.")]


def test_the_gateway_side_is_every_module_of_the_client_and_the_gateway() -> None:
    # guards against a walk that silently finds nothing (a wrong folder)
    assert {"keyledger.client.calls", "keyledger.gateway.link"} <= set(GATEWAY_SIDE)
    assert {"keyledger.gateway.buffer", "keyledger.gateway.example"} <= set(GATEWAY_SIDE)


def test_the_sdk_and_the_gateway_wing_import_nothing_from_services() -> None:
    found = loaded_by(GATEWAY_SIDE)
    assert set(GATEWAY_SIDE) <= set(found)
    assert under(found, "services") == []


def test_the_sdk_does_not_load_the_permission_renderer() -> None:
    found = loaded_by(("keyledger.client",))
    sdk = set(modules_of("keyledger.client"))
    assert [m for m in under(found, "keyledger") if m not in sdk] == ["keyledger"]


def test_contracts_stand_alone() -> None:
    found = loaded_by(CONTRACTS)
    assert "contracts.connection" in found
    for package in ("services", "keyledger", "faststream", "sqlalchemy"):
        assert under(found, package) == [], package
