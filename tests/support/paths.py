"""Where things are in the repository."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
EXAMPLES = ROOT / "examples"
SCRIPTS = ROOT / "scripts"
CONFIG_SCHEMA = DOCS / "config.schema.json"
DEMO_VM = ROOT / "src" / "openimds" / "data" / "demo-vm.json"
