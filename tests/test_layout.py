"""The package's layout: what sits at the top level, and which way the imports point.

    cli -> tasks -> generate -> (training, evaluation, export) -> (operators, datasets, online,
    solvers) -> kernels -> core types (errors, fields, stepper, config)

A module may import its own layer or a lower one; nothing below `tasks` imports a task, and
no task imports another. Run as a script to print the import graph's edges between parts.
"""

from __future__ import annotations

import ast
from collections import Counter
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "surrogate"
TOP_LEVEL = {"__init__.py", "__main__.py", "cli.py", "config.py", "device.py", "errors.py", "fields.py", "stepper.py"}
LAYERS = {
    "errors": 0,
    "fields": 0,
    "stepper": 0,
    "config": 0,
    "device": 0,
    "kernels": 1,
    "operators": 2,
    "datasets": 2,
    "online": 2,
    "solvers": 2,
    "training": 3,
    "evaluation": 3,
    "export": 3,
    "generate": 4,
    "tasks": 5,
    "cli": 6,
    "__init__": 6,
    "__main__": 6,
}
TASK_MODULES = {"grid", "mesh", "steady"}


def part_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> list[str]:
    """Every `surrogate.*` module a file imports (at any depth of the file, lazy imports too)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
    return [m for m in out if m == "surrogate" or m.startswith("surrogate.")]


def edges() -> list[tuple[Path, str]]:
    return [(p, m) for p in sorted(PACKAGE.rglob("*.py")) for m in imports(p)]


def test_top_level_holds_only_entry_points_and_core_types() -> None:
    files = {p.name for p in PACKAGE.glob("*.py")}
    assert files == TOP_LEVEL, f"unexpected top-level modules: {sorted(files - TOP_LEVEL)}"
    assert {p.name for p in (PACKAGE / "tasks").glob("*.py")} == {"__init__.py", "base.py", *(f"{t}.py" for t in TASK_MODULES)}
    assert {p.stem for p in (PACKAGE / "generate").glob("*.py")} >= {"ns2d", "gpme", "cfdbench", "channel", "steady"}


def test_imports_point_down() -> None:
    wrong = []
    for path, module in edges():
        here, there = part_of(path), module.split(".")[1] if "." in module else "__init__"
        assert here in LAYERS and there in LAYERS, f"{path}: part {here!r} or {there!r} has no layer"
        if LAYERS[there] > LAYERS[here]:
            wrong.append(f"{path.relative_to(PACKAGE)} imports {module}")
    assert not wrong, "imports pointing up:\n" + "\n".join(wrong)


def test_nothing_below_tasks_imports_a_task_and_tasks_do_not_import_each_other() -> None:
    wrong = []
    for path, module in edges():
        rel = path.relative_to(PACKAGE)
        if not module.startswith("surrogate.tasks"):
            continue
        if rel.parts[0] not in ("tasks", "cli.py", "__init__.py", "__main__.py"):
            wrong.append(f"{rel} imports {module}")
        target = module.split(".")[2] if module.count(".") >= 2 else None
        if rel.parts[0] == "tasks" and rel.stem in TASK_MODULES and target in TASK_MODULES and target != rel.stem:
            wrong.append(f"{rel} imports another task, {module}")
    assert not wrong, "\n".join(wrong)


if __name__ == "__main__":
    graph = Counter((part_of(p), m.split(".")[1] if "." in m else "__init__") for p, m in edges())
    for (a, b), n in sorted(graph.items(), key=lambda kv: (-LAYERS[kv[0][0]], kv[0])):
        if a != b:
            print(f"{a:>10} (layer {LAYERS[a]}) -> {b:<10} (layer {LAYERS[b]})  x{n}")
    for test in (
        test_top_level_holds_only_entry_points_and_core_types,
        test_imports_point_down,
        test_nothing_below_tasks_imports_a_task_and_tasks_do_not_import_each_other,
    ):
        test()
        print(f"{test.__name__}: holds")
