"""Screenshots of the browser tests: every step into the test's artifacts folder; the few the
README shows also into docs/ when KEYLEDGER_DOCS_SCREENSHOTS=1."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from playwright.sync_api import Page

DOCS = Path(__file__).resolve().parents[2] / "docs"


@dataclass
class Screens:
    folder: Path
    taken: list[Path] = field(default_factory=list)

    def shot(self, page: Page, name: str, *, docs: bool = False, full: bool = True) -> Path:
        """`NN-name.png` in the artifacts folder; with docs=True and the env var set, also
        docs/console-<name>.png (the README's pictures, refreshed by hand, then committed)."""
        assert re.fullmatch(r"[a-z0-9-]+", name), name
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full)
        self.taken.append(path)
        if docs and os.environ.get("KEYLEDGER_DOCS_SCREENSHOTS") == "1":
            DOCS.mkdir(exist_ok=True)
            page.screenshot(path=str(DOCS / f"console-{name}.png"), full_page=full)
        return path
