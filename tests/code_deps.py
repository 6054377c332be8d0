"""Which stages/*.py files each stage of dvc.yaml runs: its script and everything that script imports.

The deps of dvc.yaml must list them, or editing a module leaves the stages that use it stale (DVC
hashes only what `deps` lists). tests/test_dvc_yaml.py checks the lists; after changing imports,

    python -m tests.code_deps --write

rewrites the `stages/*.py` lines of every stage's deps (other deps and the rest of the file are kept).
Imports inside functions count: they run when that code path does.
"""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "stages"
CODE_DEP = re.compile(rf"^ {{6}}- {PACKAGE}/\w+\.py\s*$")


def imported_modules(module: str) -> set[str]:
    """`stages.x` modules that `module` imports anywhere in its source."""
    tree = ast.parse((ROOT / f"{module.replace('.', '/')}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == PACKAGE}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == PACKAGE:
            if node.module == PACKAGE:  # from stages import qa, translation
                found |= {f"{PACKAGE}.{alias.name}" for alias in node.names}
            else:
                found.add(node.module)
    return found


def import_closure(module: str) -> set[str]:
    seen, todo = set(), [module]
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += imported_modules(current)
    return seen


def stage_module(cmd: str) -> str:
    match = re.search(rf"python -m ({PACKAGE}\.\w+)", cmd)
    if not match:
        raise ValueError(f"cannot find `python -m {PACKAGE}.<stage>` in the command {cmd!r}")
    return match.group(1)


def expected_code_deps(cmd: str) -> list[str]:
    """The stage's script first, then the modules it imports, as dvc.yaml paths."""
    entry = stage_module(cmd)
    rest = sorted(import_closure(entry) - {entry})
    return [f"{m.replace('.', '/')}.py" for m in [entry, *rest]]


def declared_code_deps(stage: dict) -> list[str]:
    return [d for d in stage.get("deps", []) if isinstance(d, str) and d.startswith(f"{PACKAGE}/")]


def stages(dvc_yaml: Path = ROOT / "dvc.yaml") -> dict[str, dict]:
    return yaml.safe_load(dvc_yaml.read_text())["stages"]


def write(dvc_yaml: Path = ROOT / "dvc.yaml") -> None:
    """Replace each stage's `stages/*.py` deps with the derived list, after its data deps."""
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
    if parser.parse_args().write:
        write()
    for name, spec in stages().items():
        print(f"{name}: {', '.join(expected_code_deps(spec['cmd']))}")
