"""The package layering of docs/architecture.md, checked on the imports of each module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Packages each package may import at module level, besides itself.
ALLOWED = {
    "config": set(),
    "integration": {"config"},
    "knowledge": {"integration", "config"},
}
PROJECT_PACKAGES = {"config", "integration", "knowledge", "widgets", "inward", "bot", "workflows", "community_sync"}


def module_level_imports(path: Path) -> set[str]:
    """Return the project packages a module imports outside functions."""
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(name.split(".")[0] for name in names if name.split(".")[0] in PROJECT_PACKAGES)
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_lower_layers(package):
    allowed = ALLOWED[package] | {package}
    offending = {
        str(path.relative_to(ROOT)): sorted(module_level_imports(path) - allowed)
        for path in sorted((ROOT / package).rglob("*.py"))
        if module_level_imports(path) - allowed
    }
    assert offending == {}
