"""The code each stage of dvc.yaml runs: its script and the package folders of everything it imports.

The deps of dvc.yaml must list them, or editing a module leaves the stages that use it stale (DVC
hashes only what `deps` lists). A stage lists `stages/<name>.py` and whole folders of the `transfer`
package (`transfer/core`, `transfer/tasks`, ...): short enough to read, and an edit re-runs every stage
whose import closure reaches the folder. tests/test_dvc_yaml.py checks the lists; after changing imports,

    python -m tests.code_deps --write

rewrites the code lines of every stage's deps (other deps and the rest of the file are kept).
Imports inside functions count (they run when that code path does); imports under
`if TYPE_CHECKING:` do not (they never run).
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("stages", "transfer")
CODE_DEP = re.compile(r"^ {6}- (stages/\w+\.py|transfer(/\w+)?)\s*$")


def module_file(module: str) -> Path:
    path = ROOT / module.replace(".", "/")
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _type_checking_nodes(tree: ast.Module) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks."""
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", None)) == "TYPE_CHECKING":
            inside |= {id(child) for statement in node.body for child in ast.walk(statement)}
    return inside


def imported_modules(module: str) -> set[str]:
    """Modules of this project that `module` imports when it runs (anywhere but under TYPE_CHECKING)."""
    tree = ast.parse(module_file(module).read_text())
    skip = _type_checking_nodes(tree)
    found = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] in PACKAGES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
            found.add(node.module)
            # `from transfer.training import cpu_dropout`: a submodule, not a name in __init__
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if module_file(f"{node.module}.{alias.name}").exists()}
    # Importing a.b.c runs a/__init__.py and a/b/__init__.py first.
    parents = {".".join(name.split(".")[:i]) for name in found for i in range(1, name.count(".") + 1)}
    return found | parents


def import_closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += imported_modules(current)
    return seen


def code_unit(module: str) -> str | None:
    """The dvc.yaml dep that covers a module: its folder under transfer/ (None for transfer/__init__.py,
    which holds only a docstring), or the stage script itself."""
    parts = module.split(".")
    if parts[0] == "stages":
        return f"stages/{parts[1]}.py" if len(parts) > 1 else None
    if len(parts) == 1:
        return None
    if (ROOT / "transfer" / parts[1]).is_dir():
        return f"transfer/{parts[1]}"
    return f"transfer/{parts[1]}.py"


def stage_module(cmd: str) -> str:
    match = re.search(r"(?:python|\$\{launch\.command\}) -m (stages\.\w+)", cmd)
    if not match:
        raise ValueError(f"cannot find `python -m stages.<stage>` (or `${{launch.command}} -m ...`) in {cmd!r}")
    return match.group(1)


def expected_code_deps(cmd: str) -> list[str]:
    """The stage's script first, then the package folders it imports, as dvc.yaml paths."""
    entry = stage_module(cmd)
    units = {code_unit(module) for module in import_closure(entry)} - {None, code_unit(entry)}
    return [code_unit(entry), *sorted(units)]


def declared_code_deps(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if isinstance(d, str) and d.startswith(PACKAGES)]


def stages(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, dict]:
    return yaml.safe_load(dvc_yaml.read_text())["stages"]


def module_graph() -> dict[str, set[str]]:
    """Every module of the transfer package and stages/, and the project modules it imports."""
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
               for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    return {module: imported_modules(module) - {module} for module in modules}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle (a list of modules, the first repeated at the end), or None."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        stack.append(node)
        for child in sorted(graph.get(node, ())):
            if state.get(child) == "open":
                return stack[stack.index(child):] + [child]
            if child not in state and (cycle := visit(child)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def write(dvc_yaml: Path = ROOT / "dvc.yaml") -> None:
    """Replace each stage's code deps with the derived list, after its data deps."""
    lines, out, current, in_deps = dvc_yaml.read_text().splitlines(), [], None, False
    specs = stages(dvc_yaml)
    for line in lines:
        if re.match(r"^  (\w+):\s*$", line) and not line.startswith("   "):
            current = line.strip()[:-1]
        if line == "    deps:":
            in_deps = True
            out.append(line)
            continue
        if in_deps and CODE_DEP.match(line):
            continue
        if in_deps and not line.startswith("      "):
            out += [f"      - {path}" for path in expected_code_deps(specs[current]["cmd"])]
            in_deps = False
        out.append(line)
    dvc_yaml.write_text("\n".join(out) + "\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--write", action="store_true", help="rewrite the code deps in dvc.yaml")
    parser.add_argument("--cycles", action="store_true", help="print an import cycle, if there is one")
    cli = parser.parse_args()
    if cli.write:
        write()
    if cli.cycles:
        print(find_cycle(module_graph()) or "no import cycle")
    else:
        for name, spec in stages().items():
            print(f"{name}: {', '.join(expected_code_deps(spec['cmd']))}")
