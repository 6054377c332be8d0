"""The layout holds: stages are thin entry points over the `transfer` package, the package has no import
cycles, imports inside functions are only for heavy or optional libraries (and say so), and no code
outside transfer/tasks/ branches on a task's name."""

from __future__ import annotations

import ast
import re

import pytest

from tests.code_deps import ROOT, find_cycle, module_graph

PYTHON = sorted([*(ROOT / "stages").glob("*.py"), *(ROOT / "transfer").rglob("*.py")])


def test_no_import_cycles():
    assert find_cycle(module_graph()) is None


def test_no_cycle_is_found_where_there_is_none_and_one_is_where_there_is():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_no_stage_imports_another_stage_or_is_imported_by_the_package():
    graph = module_graph()
    offenders = {module: sorted(m for m in imports if m.startswith("stages."))
                 for module, imports in graph.items() if any(m.startswith("stages.") for m in imports)}
    assert not offenders, f"stage code imported as a library: {offenders}; move it into transfer/"


def function_level_imports(tree: ast.Module) -> list[ast.stmt]:
    type_checking = {id(child) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and getattr(node.test, "id", None) == "TYPE_CHECKING"
                     for statement in node.body for child in ast.walk(statement)}
    found = []
    for function in ast.walk(tree):
        if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
            found += [node for node in ast.walk(function) if isinstance(node, ast.Import | ast.ImportFrom)
                      and id(node) not in type_checking]
    return found


@pytest.mark.parametrize("path", PYTHON, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_inside_functions_are_heavy_or_optional_libraries_with_a_reason(path):
    lines = path.read_text().splitlines()
    for node in function_level_imports(ast.parse(path.read_text())):
        names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
        where = f"{path.relative_to(ROOT)}:{node.lineno}"
        assert not any(name.split(".")[0] in ("transfer", "stages") for name in names), (
            f"{where}: imports project code inside a function; import it at the top (cycles are checked)")
        stdlib = all(name.split(".")[0] in __import__("sys").stdlib_module_names for name in names)
        assert not stdlib, f"{where}: a standard-library import inside a function; import it at the top"
        first_of_group = node.lineno == 1 or not re.match(r"\s+(from|import) ", lines[node.lineno - 2])
        if first_of_group:
            assert "#" in lines[node.lineno - 1], f"{where}: say why this import is inside a function (a comment)"


TASK_BRANCH = re.compile(r"""\btask(\.name)?\s*(==|!=|\bin\b|\bnot in\b)\s*[("']"""
                         r"""|\[\s*["'](classification|qa|translation)""")


def test_no_code_outside_the_tasks_branches_on_a_task_name():
    offenders = [f"{path.relative_to(ROOT)}:{i}: {line.strip()}" for path in PYTHON if "tasks" not in path.parts
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if TASK_BRANCH.search(line) or re.search(r"""["'](qa|translation)["']\s*:""", line)]
    assert not offenders, "task-specific code outside transfer/tasks/:\n" + "\n".join(offenders)


def test_the_branch_check_would_see_one():
    assert TASK_BRANCH.search('if params.task == "qa":')
    assert TASK_BRANCH.search('if task.name in ("qa", "translation"):')
    assert not TASK_BRANCH.search("if task.label_head:")
