"""Arrows that must not exist: the SDK and the gateway wing need contracts/, never services/."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import contracts

# what a gateway installs and imports: the SDK and the gateway library
GATEWAY_SIDE = (
    "keyledger.client",
    "keyledger.gateway",
    "keyledger.gateway_link",
    "keyledger.gateway_http",
    "keyledger.callbuffer",
    "keyledger.example_gateway",
)
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


def test_the_sdk_and_the_gateway_wing_import_nothing_from_services() -> None:
    found = loaded_by(GATEWAY_SIDE)
    assert set(GATEWAY_SIDE) <= set(found)
    assert under(found, "services") == []


def test_the_sdk_does_not_load_the_permission_renderer() -> None:
    found = loaded_by(("keyledger.client",))
    sdk = {"keyledger.client", "keyledger.client_notifier", "keyledger.client_calls"}
    assert [m for m in under(found, "keyledger") if m not in sdk] == ["keyledger"]


def test_contracts_stand_alone() -> None:
    found = loaded_by(CONTRACTS)
    assert "contracts.connection" in found
    for package in ("services", "keyledger", "faststream", "sqlalchemy"):
        assert under(found, package) == [], package
