"""Imports between the apps run one way, from higher layers to lower ones; a piece two apps
need lives in the lower one. Every import counts, at module level or inside a function."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "medmax_review"
# Lowest first: an app may import only apps before it.
LAYERS = ["core", "projects", "sources", "review", "scoring", "generation", "exports",
          "evaluation"]
# The one edge against the order: an import of MedMax rows as approved writes their candidates
# (review.candidates) while it writes the records.
KNOWN = {("sources", "review")}


def _imports(app: str) -> set[str]:
    found = set()
    for path in (PACKAGE / app).rglob("*.py"):
        if "migrations" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [
                a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                parts = name.split(".")
                if len(parts) > 1 and parts[0] == "medmax_review" and parts[1] in LAYERS:
                    found.add(parts[1])
    return found - {app}


def test_apps_import_only_lower_layers():
    upward = {(app, other) for app in LAYERS for other in _imports(app)
              if LAYERS.index(other) > LAYERS.index(app)}
    assert upward == KNOWN
