"""The line between web and worker is drawn once, in shared/: the web never imports the worker, shared never
imports services. Read from the source (every import statement, at any depth), so a lazy import counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def _violations(package: str, forbidden: str) -> list[str]:
    files = sorted((REPO_ROOT / package).rglob("*.py"))
    assert files, f"no Python files under {package}"
    return [
        f"{path.relative_to(REPO_ROOT)}:{line} imports {module}"
        for path in files for line, module in _imports(path)
        if module == forbidden or module.startswith(forbidden + ".")
    ]


@pytest.mark.parametrize(("package", "forbidden"), [("services/web", "services.worker"), ("shared", "services")])
def test_imports_point_one_way(package: str, forbidden: str) -> None:
    assert _violations(package, forbidden) == []


def test_the_check_sees_a_lazy_import(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from services.worker.tasks import register_tasks\n", encoding="utf-8")
    assert _imports(probe) == [(2, "services.worker.tasks")]
