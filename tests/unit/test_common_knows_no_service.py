"""services/common is shared plumbing: it imports no service; each service brings its own spec."""

from __future__ import annotations

import pkgutil

import services.common
from tests.unit.test_import_boundaries import loaded_by, under

COMMON = tuple(f"services.common.{m.name}" for m in pkgutil.iter_modules(services.common.__path__))


def test_services_common_loads_no_service() -> None:
    found = loaded_by(COMMON)
    assert "services.common.migrate" in found
    for service in ("services.keys", "services.notifier", "services.calllog", "services.console"):
        assert under(found, service) == [], service


def test_each_service_declares_its_own_migration_spec() -> None:
    from keyledger.cli.migrate import migration_specs

    specs = migration_specs()
    assert list(specs) == [
        "keys",
        "notifier",
        "calllog",
        "console",
    ]  # the order `keyledger migrate` runs
    for name, spec in specs.items():
        # the version tables of the release before the specs: renaming one would re-migrate
        assert spec.version_table == f"{name}_schema_version"
        assert spec.folder.parts[-3:] == ("services", name, "migrations")
        assert (spec.folder / "versions").is_dir()
