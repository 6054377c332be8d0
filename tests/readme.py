"""The shell commands of the README's ```bash blocks, so that tests run what users will type."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def readme_commands(program: str = "dvc") -> list[str]:
    """Every `program ...` line of the README's bash blocks, without its trailing comment."""
    blocks = [block.replace("\\\n", " ") for block in BLOCK.findall((ROOT / "README.md").read_text())]
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    return [shlex.join(words) for line in lines if (words := shlex.split(line, comments=True))
            and words[0] == program]


def readme_command(prefix: str) -> str:
    """The one README command that starts with `prefix`."""
    found = [command for command in readme_commands() if command.startswith(prefix)]
    if len(found) != 1:
        raise AssertionError(f"the README has {len(found)} commands starting with {prefix!r}: {found}")
    return found[0]
