"""Re-record dvc.lock's dependencies (code folders, params, git-tracked metrics files) without the outputs.

    .venv/bin/python -m tests.relock      # in a clone; prints, per stage, what it re-recorded

For a change that cannot change any stage's outputs: code no stage calls (a new command beside the DAG), a new
params key whose default keeps what the stages do, a reworded comment. The committed default run's outputs
(metrics/, docs/results.md) stay as they were recorded; everything else in dvc.lock stays too. Read what it
prints: a stage listed for a change that does touch its outputs must be re-run instead (`dvc repro`), or the
lock would claim results the code did not produce. A development tool, not a test.
"""

from __future__ import annotations

import subprocess

from dvc.dependency.param import ParamsDependency
from dvc.repo import Repo


def recorded(dep) -> object:
    return dict(dep.hash_info.value or {}) if isinstance(dep, ParamsDependency) else dep.hash_info.value


def relock() -> dict[str, dict]:
    tracked = set(subprocess.run(["git", "ls-files"], capture_output=True, text=True, check=True).stdout.split())
    repo = Repo(".")
    changes = {}
    with repo.lock:
        for stage in repo.index.stages:
            if not getattr(stage, "cmd", None):
                continue
            before = {str(dep.def_path): recorded(dep) for dep in stage.deps}
            for dep in stage.deps:
                path = str(dep.def_path)
                if isinstance(dep, ParamsDependency) or path.startswith(("stages", "transfer")) or path in tracked:
                    dep.save()
            changed = {}
            for dep in stage.deps:
                path, now = str(dep.def_path), recorded(dep)
                if before.get(path) != now:
                    old = before.get(path) or {}
                    changed[path] = ({key: now.get(key) for key in set(now) | set(old) if now.get(key) != old.get(key)}
                                     if isinstance(now, dict) else "re-hashed")
            if changed:
                stage.dump(update_pipeline=False)
                changes[stage.addressing] = changed
    return changes


if __name__ == "__main__":
    for stage, changed in relock().items():
        print(f"{stage}: {changed}")
