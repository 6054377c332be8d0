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
# The language of each packaged corpus (ISO 639-1, as the hub's `language` metadata takes it); files and hub
# datasets are the user's, and the pipeline does not detect languages.
PACKAGED_LANGUAGES = {"crowdflower_tweets": "en", "drugscom_reviews": "en", "bbc_news": "en"}
LANGUAGE_NAMES = {"en": "English"}
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
    source_data: bool = True  # trained on the source domain too (False: the target-only baseline)


def corpus_name(corpus) -> str:
    """How a corpus of params is named in the card's `datasets` (what a reader can look up)."""
    if isinstance(corpus, PackagedCorpus):
        return corpus.name
    if isinstance(corpus, HubDataset):
        return corpus.path if corpus.config is None else f"{corpus.path}/{corpus.config}"
    if isinstance(corpus, LocalFiles):
        return str(corpus.path or corpus.train)
    return str(corpus)


def target_language(params: Params) -> str | None:
    """The target corpus' language where the pipeline knows it (a packaged corpus), else None."""
    target = params.data.target
    return PACKAGED_LANGUAGES.get(target.name) if isinstance(target, PackagedCorpus) else None


def metadata(params: Params, facts: CardFacts, task: Task) -> dict:
    base = EMBEDDED_HUB_IDS.get(facts.base_model or params.model.name, facts.base_model or params.model.name)
    target = corpus_name(params.data.target)
    card: dict = {}
    if "/" in base and not base.startswith(("/", ".")):  # a hub id (a local path names nothing a reader can find)
        card["base_model"] = base
    language = target_language(params)
    if language:
        card["language"] = [language]
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
              (f"- Source domain: `{source}`; target domain: `{target}`" if facts.source_data
               else f"- Target domain: `{target}` only (no source data)"),
              *(f"- Labels: {', '.join(params.data.labels)}" for _ in [0] if params.data.labels),
              f"- Strategy: {facts.strategy}",
              *(f"- {line}" for line in facts.training),
              f"- Seed: {params.seed}",
              "", "## Intended use and limits", "",
              f"- For {task.pipeline_tag} on text like `{target}`'s; scores on other domains are not "
              "measured here and are likely lower.",
              (f"- Language: {LANGUAGE_NAMES.get(language, language)} (`{target}`), the only one measured."
               if (language := target_language(params)) else
               f"- Language: that of `{target}`'s texts, the only one measured (the pipeline does not record "
               "it; add `language` to the metadata above when you publish the card)."),
              f"- The figures above come from {facts.test_examples} test examples: expect them to move by a few "
              "points on another sample of the same domain.",
              *(f"- {line}" for line in facts.limits),
              "", "Written by the pipeline that trained it (transfer-pipeline); regenerated on every run."]
    front = yaml.safe_dump(metadata(params, facts, task), sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n".join(lines) + "\n"


def headline_facts(report: dict, arm: str, params: Params, task: Task, labeled_examples: int) -> CardFacts:
    """The card of a headline arm (`target`: the chosen model; `baseline`: target_only) from evaluate's report
    (metrics/eval.json): the shipped folder is the `seed` model, so its own scores head the card, and the
    mean over every training seed, the gain and its interval follow, as evaluate computed them."""
    primary, name = task.primary, task.metrics[task.primary]
    summary, seeds = report[arm], report["training_seeds"][arm]
    own = summary["seeds"].get(params.seed, summary["seeds"].get(str(params.seed)))
    spread = (f"{summary[primary]:.4f} ± {summary[f'{primary}_std']:.4f} (mean ± std)" if len(seeds) > 1
              else f"{summary[primary]:.4f}")
    training = [f"{labeled_examples} labeled target training examples"
                + ("; continued pretraining on the target text first" if arm == "target"
                   and report.get("pretrain_domain") else ""),
                f"Learning rate {summary['learning_rate']:g}, chosen on target validation from "
                f"{', '.join(f'{rate:g}' for rate in params.finetune.learning_rates)}"
                + "".join(f"; {words} chosen on target validation: {_per_seed(summary[key], params.seed)}"
                          for key, words in (("best_epoch", "epoch"), ("logit_adjustment", "logit adjustment"))
                          if summary.get(key)),
                f"{name} over its {len(seeds)} training seeds ({', '.join(map(str, seeds))}): {spread}; the other "
                f"seeds' models are in models/trained/{arm}_seeds"]
    if arm == "target" and report.get("levers"):
        training.append("Levers chosen on target validation and folded into the model: "
                        + ", ".join(f"`{lever}`" for lever in report["levers"]))
    if arm == "target" and report.get("selection"):
        training.append(f"Strategy `auto` chose `{report['selection']['chosen']}` by cross-validation on the "
                        "target labels")
    limits = list(report.get("warnings", []))
    trivial = report.get("trivial_baseline")
    if trivial:
        limits.append(f"A constant predictor ({trivial['name']}) scores {name} {trivial[primary]:.4f} on the same "
                      "test split.")
    if arm == "target":
        strategy = report["strategy"] + (f" (chose {report['selection']['chosen']})" if report.get("selection")
                                         else "")
        gain = {"points": report[f"gain_{primary}_points"], "ci95": report["gain_ci95_points"],
                "significant": report.get("significant"),
                "over": f"the target-only baseline (models/baseline), in {name}, mean over the training seeds of "
                        "both"}
        if report.get("negative_transfer"):
            limits.append("Negative transfer: this model scores below the target-only baseline; prefer "
                          "models/baseline.")
        return CardFacts(title=f"{strategy} (transferred) model",
                         role=(f"The model the pipeline ships: the `{strategy}` transfer from "
                               f"`{corpus_name(params.data.source)}` to `{corpus_name(params.data.target)}`, "
                               f"trained with seed {params.seed}."),
                         strategy=strategy, scores=_scores(own, task), metric_names=task.metrics,
                         test_examples=report["test_examples"], training=training, gain=gain, limits=limits)
    gain_words = f"{report[f'gain_{primary}_points']:+.2f} points of {name}"
    return CardFacts(title="target_only baseline",
                     role=(f"The yardstick of the transfer: the base model fine-tuned on the target labels alone, "
                           f"tuned as the transferred model is. The transferred model (models/target) is "
                           f"{gain_words} ahead of it, mean over the training seeds of both (its card gives the "
                           f"interval)."),
                     strategy="target_only", scores=_scores(own, task), metric_names=task.metrics,
                     test_examples=report["test_examples"], training=training, limits=limits, source_data=False)


def _per_seed(values: dict, seed: int) -> str:
    value = values.get(seed, values.get(str(seed)))
    return "n/a" if value is None else f"{value:g}"


def _scores(seed_scores: dict, task: Task) -> dict[str, float]:
    return {metric: seed_scores[metric] for metric in task.metrics if metric in seed_scores}
