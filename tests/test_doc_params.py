"""Every params fragment the documentation shows (a ```yaml block whose top-level keys are params.yaml's)
is valid: merged into the shipped params.yaml, it passes the schema and its task's rules. A user copies
these blocks; one that fails validation sends them to the error messages before they start."""

from __future__ import annotations

import re
import sys

import pytest
import yaml

from tests.conftest import ROOT
from transfer.core.params import PARAMS_FILE, merged, parse_params
from transfer.core.strategy_registry import STRATEGIES
from transfer.tasks.registry import task_for

BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def params_fragments() -> list[tuple[str, dict]]:
    shipped = set(yaml.safe_load(PARAMS_FILE.read_text()))
    fragments = []
    for page in PAGES:
        for number, block in enumerate(BLOCK.findall(page.read_text()), start=1):
            fragment = yaml.safe_load(block)
            if isinstance(fragment, dict) and fragment and set(fragment) <= shipped:
                fragments.append((f"{page.relative_to(ROOT)} yaml block {number}", fragment))
    return fragments


def test_the_documentation_shows_params_fragments():
    assert len(params_fragments()) >= 5  # README's own data, data.md, strategies' auto, tasks' qa and translation


@pytest.mark.parametrize(("where", "fragment"), params_fragments(), ids=lambda value: value
                         if isinstance(value, str) else "")
def test_a_documented_params_fragment_validates_merged_into_params_yaml(where, fragment, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # a hub model.name is not looked up (the run's stage does that)
    raw = merged(yaml.safe_load(PARAMS_FILE.read_text()), fragment)
    for domain in ("source", "target"):  # a corpus spec is written whole: it replaces the shipped one
        if domain in fragment.get("data", {}):
            raw["data"][domain] = fragment["data"][domain]
    registered = dict(STRATEGIES)
    try:
        for plugin in fragment.get("plugins", []):  # imported afresh: another test may have dropped what it registers
            sys.modules.pop(plugin, None)
        params = parse_params(raw, origin=where)
        task_for(params, origin=where)
    finally:  # what a documented plugin registered stays out of the other tests
        STRATEGIES.clear()
        STRATEGIES.update(registered)
