"""Every console page is photographed at both widths in docs/console/, and the README and
docs/console.md show what is there (scripts/screenshots writes them)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.clients.console.screenshots import PAGES

ROOT = Path(__file__).resolve().parents[3]


def test_every_page_has_a_screenshot_at_both_widths() -> None:
    for page in PAGES:
        for width in (1280, 390):
            shot = ROOT / "docs" / "console" / f"{page}-{width}.png"
            assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", shot
            # The PNG header's width field: the page was taken at that width.
            assert int.from_bytes(shot.read_bytes()[16:20], "big") == width, shot


def test_the_docs_show_only_screenshots_that_exist() -> None:
    for doc, base in ((ROOT / "README.md", ROOT), (ROOT / "docs" / "console.md", ROOT / "docs")):
        shown = re.findall(r"\]\(((?:docs/)?console/[^)]+\.png)\)", doc.read_text())
        assert shown, doc
        for path in shown:
            assert (base / path).is_file(), f"{doc.name} shows {path}"
