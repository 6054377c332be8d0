"""The task registry: `task: <name>` in params.yaml picks one of these, and each stage looks it up once.

Rows by task: classification {id, text, label}; qa {id, question, context, answers}; translation
{id, source_text, target_text}. A new task subclasses `Task` (transfer/tasks/base.py) and is added with
`register`; nothing else in the pipeline names a task.
"""

from __future__ import annotations

from transfer.core.errors import ParamsError
from transfer.core.modeling import backbone_of, gguf_source, resolve_model
from transfer.core.params import JointParams, LocalFiles, PackagedCorpus, Params
from transfer.tasks.base import Task
from transfer.tasks.classification import Classification
from transfer.tasks.qa import QuestionAnswering
from transfer.tasks.translation import Translation

TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    TASKS[task.name] = task
    return task


for _task in (Classification(), QuestionAnswering(), Translation()):
    register(_task)


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise ParamsError(f"params.yaml is invalid:\n  task: unknown task `{name}` (known: {', '.join(TASKS)})")
    return TASKS[name]


def task_for(params: Params, origin: str = "params.yaml") -> Task:
    """The task params name, after the checks that depend on it (the schema has done the rest)."""
    task = get_task(params.task)
    problems = corpus_problems(params, task) + task.check_params(params) + backbone_problems(params, task)
    if not task.label_head:
        problems += [f"{problem} (task: {task.name})" for problem in label_head_problems(params, task)]
    if problems:
        raise ParamsError(f"{origin} is invalid:\n" + "\n".join(f"  {problem}" for problem in problems))
    return task


def corpus_problems(params: Params, task: Task) -> list[str]:
    """Corpus keys and formats of another task, and packaged (classification) corpora elsewhere, are
    refused rather than ignored."""
    problems = []
    for domain in ("source", "target"):
        corpus = getattr(params.data, domain)
        if isinstance(corpus, PackagedCorpus) and not task.label_head:
            problems.append(f"data.{domain}: the packaged corpora are classification data; give `files` or "
                            f"`hub` data for task {task.name}")
        if isinstance(corpus, LocalFiles):
            owner = next((other.name for other in TASKS.values() if corpus.format in other.formats), task.name)
            if owner != task.name:
                problems.append(f"data.{domain}.format: {corpus.format} is for task {owner}")
        for other in TASKS.values():
            for key in sorted(set(other.corpus_keys) & corpus.model_fields_set):
                if other.name != task.name and key not in task.corpus_keys:
                    problems.append(f"data.{domain}.{key}: a {other.name} key; task is {task.name}")
    return problems


def label_head_problems(params: Params, task: Task) -> list[str]:
    """Knobs that need a classifier over data.labels, set for a task without one."""
    chosen = {params.finetune.strategy, *params.compare.strategies}  # auto too: it selects by class predictions
    strategies = sorted(chosen - set(task.strategies))
    checks = [
        (params.data.labels, "data.labels: class names are for classification; set []"),
        (params.augment.n_aug, "augment.n_aug: EDA rewrites words, which would move QA answer offsets and "
                               "break translation pairs; set 0"),
        (params.augment.rebalance != "none", "augment.rebalance: there are no classes to rebalance; set none"),
        (strategies, f"finetune.strategy / compare.strategies: {', '.join(strategies)} need a label head "
                     f"(classification only); {task.name} supports {', '.join(task.strategies)}"),
        (params.finetune.weight_ensembling.mixes != [1.0] or params.finetune.self_training.rounds
         or params.finetune.label_shift != "none",
         "finetune.weight_ensembling / self_training / label_shift work on class probabilities (classification "
         "only); set mixes: [1.0], rounds: 0, label_shift: none"),
        (params.finetune.mixed_mlm.weight > 0, "finetune.mixed_mlm trains a sequence classifier and an MLM head "
                                               "together (classification only); set mixed_mlm.weight: 0"),
        ("joint" in chosen and params.finetune.joint != JointParams(source_weight=1.0, target_weight=1.0),
         "finetune.joint weights: the source and target examples of QA / translation train as one mixed "
         "set, without per-domain loss weights; leave them at 1.0"),
    ]
    return [message for failed, message in checks if failed]


__all__ = ["TASKS", "Task", "get_task", "register", "task_for"]


def backbone_problems(params: Params, task: Task) -> list[str]:
    """A decoder-only model.name for a task that has no decoder path (its config is read only then)."""
    if task.decoder_backbone:
        return []
    try:
        # GGUF files are llama.cpp's decoder checkpoints, known as such before base_model converts them.
        gguf = gguf_source(params.model.name) is not None
        backbone = "decoder" if gguf else backbone_of(resolve_model(params.model.name), params)
    except OSError:  # not reachable from here: the stage that loads the model says so, with what to do
        return []
    if backbone != "decoder":
        return []
    return [f"model.name: {params.model.name} is a decoder-only LM, and task {task.name} has no decoder path "
            f"(extractive span heads and seq2seq warm-starts need an encoder); use an encoder such as "
            f"embedded:all-MiniLM-L6-v2 or bert-base-uncased (translation: also a seq2seq model such as t5-small), "
            f"or task: classification for a decoder"]

