"""Without /usr/bin/chromium the browser tests skip on a developer's machine, and fail on CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import conftest


def test_a_missing_browser_skips_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.delenv("KEYLEDGER_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        conftest.require_browser()


def test_a_missing_browser_fails_when_ci_requires_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(conftest, "CHROMIUM", Path("/nonexistent/chromium"))
    monkeypatch.setenv("KEYLEDGER_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="KEYLEDGER_REQUIRE_BROWSER=1 but no browser"):
        conftest.require_browser()


def test_the_ci_script_installs_the_browser_and_requires_it() -> None:
    script = (Path(__file__).resolve().parents[2] / ".ci" / "run").read_text()
    assert "apt-get install -y -qq chromium" in script
    assert "export KEYLEDGER_REQUIRE_BROWSER=1" in script
    assert script.index("KEYLEDGER_REQUIRE_BROWSER=1") < script.index("make test")
