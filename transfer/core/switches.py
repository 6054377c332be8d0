"""The optional stages' `enabled` switches (compare, label_budget, prompting, domain_shift; distill has its
own wording in training/distillation.py): the reason a switched-off stage records instead of its work, and
how a reader of its metrics file tells that it did not run."""

from __future__ import annotations

WHAT = {"compare": "the strategies of compare.strategies are not trained or compared",
        "label_budget": "no label-budget point is trained; labels saved not measured",
        "prompting": "the decoder is not prompted",
        "domain_shift": "the domains' distances are not measured"}


def switched_off(section: str) -> str:
    """One sentence: which switch, what did not happen, how to turn it on."""
    return f"{section}.enabled is false: {WHAT[section]} (dvc exp run -S {section}.enabled=true runs it)"


def not_run_record(section: str) -> dict:
    """What a switched-off stage writes as its metrics file."""
    return {"enabled": False, "reason": switched_off(section)}


def was_run(record: dict) -> bool:
    """False for a metrics file a switched-off stage wrote."""
    return record.get("enabled", True) is not False
