"""The shell commands of the ```bash blocks of README.md and docs/*.md, so that tests run what users type."""

from __future__ import annotations

import re
import shlex

from tests.conftest import ROOT

BLOCK = re.compile(r"```bash\n(.*?)```", re.DOTALL)


def readme_commands(program: str = "dvc") -> list[str]:
    """Every `program ...` line of the documentation's bash blocks (once each), without its trailing comment."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    blocks = [block.replace("\\\n", " ") for page in pages for block in BLOCK.findall(page.read_text())]
    lines = [line.strip() for block in blocks for line in block.splitlines()]
    commands = [shlex.join(words) for line in lines if (words := shlex.split(line, comments=True))
                and words[0] == program]
    return list(dict.fromkeys(commands))


def readme_command(prefix: str) -> str:
    """The one documented command that starts with `prefix`."""
    found = [command for command in readme_commands() if command.startswith(prefix)]
    if len(found) != 1:
        raise AssertionError(f"the documentation has {len(found)} commands starting with {prefix!r}: {found}")
    return found[0]
