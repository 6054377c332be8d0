"""Model cards: the README.md a trained model folder carries, in the Hugging Face convention (YAML metadata
that `huggingface_hub.ModelCard` and the hub read: base_model, datasets, metrics in `model-index` form; then a
body), generated from params and the metrics the stage computed, so it says what the folder is without
anyone copying a figure by hand. Deterministic: the same run writes the same bytes (no dates, no timings).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import yaml

from transfer.core.params import HubDataset, LocalFiles, PackagedCorpus, Params

if TYPE_CHECKING:  # the stage passes its task in
    from transfer.tasks.base import Task

# The hub models the embedded checkpoints are copies of (their cards name them as base_model).
EMBEDDED_HUB_IDS = {"embedded:all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
                    "embedded:SmolLM2-135M-Instruct": "HuggingFaceTB/SmolLM2-135M-Instruct"}
METRIC_TYPES = {"macro_f1": "f1", "accuracy": "accuracy", "exact_match": "exact_match", "f1": "f1",
                "chrf": "chrf", "bleu": "bleu"}


@dataclass
class CardFacts:
    """What a card says about one model folder; the stage that writes the folder fills it in."""

    title: str  # e.g. "sequential (transferred) model", "distilled student"
    role: str  # one sentence: what this folder is for
    strategy: str
    scores: dict[str, float]  # the task's metrics on the target test split, primary first
    metric_names: dict[str, str]  # metric key -> display name (the task's)
    test_examples: int
    training: list[str] = field(default_factory=list)  # bullet lines: what it was trained on, and how
    gain: dict | None = None  # {"points": float, "ci95": [low, high], "significant": bool | None, "over": str}
    limits: list[str] = field(default_factory=list)  # bullet lines beyond the common ones
    base_model: str | None = None  # the checkpoint the folder's weights started from (default: model.name)


def corpus_name(corpus) -> str:
    """How a corpus of params is named in the card's `datasets` (what a reader can look up)."""
    if isinstance(corpus, PackagedCorpus):
        return corpus.name
    if isinstance(corpus, HubDataset):
        return corpus.path if corpus.config is None else f"{corpus.path}/{corpus.config}"
    if isinstance(corpus, LocalFiles):
        return str(corpus.path or corpus.train)
    return str(corpus)


def metadata(params: Params, facts: CardFacts, task: Task) -> dict:
    base = EMBEDDED_HUB_IDS.get(facts.base_model or params.model.name, facts.base_model or params.model.name)
    target = corpus_name(params.data.target)
    card: dict = {}
    if "/" in base and not base.startswith(("/", ".")):  # a hub id (a local path names nothing a reader can find)
        card["base_model"] = base
    card |= {"library_name": "transformers", "pipeline_tag": task.pipeline_tag,
             "datasets": [corpus_name(params.data.source), target],
             "metrics": sorted({METRIC_TYPES.get(key, key) for key in facts.scores}),
             "tags": ["domain-adaptation", "transfer-learning", "strategy-" + re.sub(r"\W+", "-", facts.strategy)],
             "model-index": [{"name": facts.title, "results": [{
                 "task": {"type": task.pipeline_tag},
                 "dataset": {"name": target, "type": target, "split": "test"},
                 "metrics": [{"type": METRIC_TYPES.get(key, key), "value": round(float(value), 4),
                              "name": facts.metric_names.get(key, key)} for key, value in facts.scores.items()]}]}]}
    return card


def model_card(params: Params, facts: CardFacts, task: Task) -> str:
    """The README.md text: YAML metadata between `---` lines, then the body."""
    source, target = corpus_name(params.data.source), corpus_name(params.data.target)
    scores = ", ".join(f"{facts.metric_names.get(key, key)} {value:.4f}" for key, value in facts.scores.items())
    lines = [f"# {facts.title}", "", facts.role, "",
             "## Results on the target test split", "",
             f"{scores} on {facts.test_examples} examples of `{target}` (the target domain's test split, never seen "
             f"in training or model selection)."]
    if facts.gain:
        low, high = facts.gain["ci95"]
        verdict = {True: "significant", False: "not significant", None: "no significance claim"}[
            facts.gain.get("significant")]
        lines += ["", f"Gain over {facts.gain['over']}: {facts.gain['points']:+.2f} points (95% interval "
                      f"{low:+.2f} to {high:+.2f}; {verdict})."]
    lines += ["", "## Training", "",
              f"- Base model: `{facts.base_model or params.model.name}`",
              f"- Source domain: `{source}`; target domain: `{target}`",
              *(f"- Labels: {', '.join(params.data.labels)}" for _ in [0] if params.data.labels),
              f"- Strategy: {facts.strategy}",
              *(f"- {line}" for line in facts.training),
              f"- Seed: {params.seed}",
              "", "## Intended use and limits", "",
              f"- For {task.pipeline_tag} on text like `{target}`'s; scores on other domains are not "
              "measured here and are likely lower.",
              f"- The figures above come from {facts.test_examples} test examples: expect them to move by a few "
              "points on another sample of the same domain.",
              *(f"- {line}" for line in facts.limits),
              "", "Written by the pipeline that trained it (transfer-pipeline); regenerated on every run."]
    front = yaml.safe_dump(metadata(params, facts, task), sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(lines) + "\n"
