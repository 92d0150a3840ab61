"""Imports point one way: dags/ → orchestration/ → the library; the library never the other way.

The rules (issue #10, "Orchestration: one direction"):
- a DAG file imports only `market_access.orchestration…`, `airflow…` and the standard library
  (plus `pendulum`) — anywhere in the file, task bodies included;
- a library module (everything in include/market_access outside orchestration/) never imports
  `market_access.orchestration` — anywhere, a lazy or type-only import is the same arrow;
- a library module does not import Airflow (or Cosmos, which imports Airflow) at module level —
  a function may, lazily; `if TYPE_CHECKING:` blocks do not run and are not counted.

Imports are read with `ast`, `from x import y` counts as x and x.y, relative imports are resolved.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "include" / "market_access"
DAGS = REPO / "dags"

ORCHESTRATION = "market_access.orchestration"
AIRFLOW_FAMILY = ("airflow", "cosmos")
DAG_ALLOWED = (ORCHESTRATION, "airflow", "pendulum")


@dataclass(frozen=True)
class Import:
    targets: tuple[str, ...]  # candidate modules: `from a import b` → ("a", "a.b")
    line: int
    module_level: bool  # runs when the importing module is imported


def _within(name: str, prefixes: tuple[str, ...] | str) -> bool:
    prefixes = (prefixes,) if isinstance(prefixes, str) else prefixes
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports_of(path: Path, module: str, is_package: bool) -> list[Import]:
    """Every import statement of a file; relative ones resolved against `module`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    base = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def resolve(node: ast.ImportFrom) -> str:
        if not node.level:
            return node.module or ""
        parts = base.split(".") if base else []
        parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
        return ".".join(parts + ([node.module] if node.module else []))

    def visit(node: ast.AST, module_level: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                for alias in child.names:
                    found.append(Import((alias.name,), child.lineno, module_level))
            elif isinstance(child, ast.ImportFrom):
                src = resolve(child)
                targets = (src, *(f"{src}.{a.name}" for a in child.names if a.name != "*"))
                found.append(Import(targets, child.lineno, module_level))
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                visit(child, False)
            elif isinstance(child, ast.If) and _is_type_checking(child.test):
                for stmt in child.body:
                    visit(ast.Module(body=[stmt], type_ignores=[]), False)
                for stmt in child.orelse:
                    visit(ast.Module(body=[stmt], type_ignores=[]), module_level)
            else:  # class bodies, try/with/if at module level run at import time
                visit(child, module_level)

    visit(tree, True)
    return found


def _module_name(path: Path, package_dir: Path) -> tuple[str, bool]:
    rel = path.relative_to(package_dir.parent).with_suffix("")
    parts = list(rel.parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def wrong_arrows(package_dir: Path, dags_dir: Path | None) -> list[str]:
    """Every import that points the wrong way, as 'importer → imported (file:line, why)'."""
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    out: list[str] = []
    for path in sorted(package_dir.rglob("*.py")):
        module, is_package = _module_name(path, package_dir)
        if _within(module, ORCHESTRATION):
            continue
        for imp in imports_of(path, module, is_package):
            where = f"{path.relative_to(package_dir.parent)}:{imp.line}"
            hit = next((t for t in imp.targets if _within(t, ORCHESTRATION)), None)
            if hit:
                out.append(f"{module} → {hit} ({where}: the library must not depend on orchestration)")
            hit = next((t for t in imp.targets if _within(t, AIRFLOW_FAMILY)), None)
            if hit and imp.module_level:
                out.append(f"{module} → {hit} ({where}: Airflow at module level in the library)")
    if dags_dir is not None:
        for path in sorted(dags_dir.glob("*.py")):
            for imp in imports_of(path, f"dags.{path.stem}", False):
                ok = any(_within(t, DAG_ALLOWED) or t.split(".")[0] in stdlib for t in imp.targets)
                if not ok:
                    out.append(
                        f"dags/{path.name} → {imp.targets[0]} (dags/{path.name}:{imp.line}: "
                        f"a DAG file imports only orchestration, Airflow and the standard library)"
                    )
    return out


def test_the_platform_imports_point_one_way():
    arrows = wrong_arrows(PACKAGE, DAGS)
    assert not arrows, "imports the wrong way:\n  " + "\n  ".join(arrows)


def test_the_checker_finds_planted_wrong_arrows(tmp_path):
    files = {
        "market_access/__init__.py": "",
        "market_access/orchestration/__init__.py": "",
        # orchestration may import Airflow and the library at module level
        "market_access/orchestration/conns.py": "import airflow.sdk\nfrom market_access import good\n",
        "market_access/good.py": """
            from typing import TYPE_CHECKING
            import os
            if TYPE_CHECKING:
                from airflow.sdk import Context
            def lazy():
                from airflow.sdk import BaseHook
                return BaseHook
        """,
        "market_access/bad_airflow.py": "from airflow.sdk import BaseHook\n",
        "market_access/sub/__init__.py": "",
        "market_access/sub/bad_relative.py": "from ..orchestration import conns\n",
        "market_access/sub/bad_lazy.py": """
            class X:
                import cosmos
            def f():
                from market_access import orchestration
        """,
        "dags/good_dag.py": """
            from __future__ import annotations
            from datetime import timedelta
            import pendulum
            from airflow.sdk import dag
            from market_access.orchestration import conns
        """,
        "dags/bad_dag.py": """
            from market_access.orchestration import conns
            def task():
                from market_access.sources import catalog
        """,
    }
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")

    arrows = wrong_arrows(tmp_path / "market_access", tmp_path / "dags")
    # by hand: one arrow per bad_* statement above, none from good.py, conns.py or good_dag.py
    assert sorted(a.split(" (")[0] for a in arrows) == sorted(
        [
            "market_access.bad_airflow → airflow.sdk",
            "market_access.sub.bad_relative → market_access.orchestration",
            "market_access.sub.bad_lazy → cosmos",
            "market_access.sub.bad_lazy → market_access.orchestration",
            "dags/bad_dag.py → market_access.sources",
        ]
    )
    assert any("bad_lazy.py:2: Airflow at module level" in a for a in arrows)  # class body runs at import


def test_the_library_imports_without_airflow():
    """Every library module imports in a Python where `airflow` and `cosmos` cannot be imported."""
    modules = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module, _ = _module_name(path, PACKAGE)
        if not _within(module, ORCHESTRATION) and not module.endswith("__main__"):
            modules.append(module)
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {AIRFLOW_FAMILY!r}:
                    raise ImportError(f"{{name}} is blocked: the library must import without Airflow")
                return None

        sys.meta_path.insert(0, Block())
        for m in {modules!r}:
            importlib.import_module(m)
        print(len({modules!r}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(len(modules))
