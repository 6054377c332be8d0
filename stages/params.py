"""The one schema for params.yaml.

Every stage validates the *whole* file at start-up, before any work: a typo in a key that
belongs to a later stage should stop the first stage, not surface an hour later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from stages.errors import ParamsError

PARAMS_FILE = Path("params.yaml")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelParams(Strict):
    # "embedded:all-MiniLM-L6-v2" (shipped in a PyPI package), a hub id, or a local folder.
    name: str = "embedded:all-MiniLM-L6-v2"
    trust_remote_code: bool = False
    # Dropout masks when training on CPU: numpy (PCG64, 10-14% faster steps here; stages/cpu_dropout.py)
    # or torch (bernoulli_, as a plain Trainer script). On a GPU torch's masks are always used.
    cpu_dropout_masks: Literal["numpy", "torch"] = "numpy"


class PackagedCorpus(Strict):
    kind: Literal["packaged"]
    # crowdflower_tweets and drugscom_reviews: positive/negative/neutral; bbc_news: its 5 topics.
    name: Literal["crowdflower_tweets", "drugscom_reviews", "bbc_news"]


def _keys_as_text(value: object) -> object:
    # YAML reads `{0: negative}` with an integer key; labels cross stage boundaries as text.
    return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value


# Names for the labels a file holds, e.g. {0: negative, 1: positive} or {pos: positive}; labels not in
# the map are kept as they are (and rejected by clean unless they are in data.labels).
LabelMap = Annotated[dict[str, str], BeforeValidator(_keys_as_text)]

# Column keys of a corpus by task: validation refuses a key that another task reads.
TASK_COLUMNS = {"classification": ("text_column", "label_column", "label_map"),
                "translation": ("source_column", "target_column")}
# squad: SQuAD v1.1/v2.0 JSON (QA only); aligned: two text files, one sentence per line (translation only).
TASK_FORMATS = {"squad": "qa", "aligned": "translation"}


class LocalFiles(Strict):
    kind: Literal["files"]
    # Either one file that is split with the seed, or one file per split. With format: aligned, each
    # is a pair [source-language file, target-language file].
    path: str | list[str] | None = None
    train: str | list[str] | None = None
    validation: str | list[str] | None = None
    test: str | list[str] | None = None
    format: Literal["auto", "csv", "tsv", "jsonl", "parquet", "squad", "aligned"] = "auto"
    # classification
    text_column: str = "text"
    label_column: str = "label"
    label_map: LabelMap = {}
    # translation: one column per language (QA tables use question, context, answer_text, answer_start)
    source_column: str = "source"
    target_column: str = "target"
    encoding: str = "utf-8"

    @model_validator(mode="after")
    def one_layout(self) -> LocalFiles:
        if (self.path is None) == (self.train is None):
            raise ValueError("give either `path` (one file, split with the seed) or `train` (+ optional "
                             "`validation`, `test`) files, not both and not neither")
        for key in ("path", "train", "validation", "test"):
            value = getattr(self, key)
            if value is not None and isinstance(value, list) != (self.format == "aligned"):
                raise ValueError(f"`{key}`: format aligned takes a pair [source file, target file] per split; "
                                 f"every other format one file")
            if isinstance(value, list) and len(value) != 2:
                raise ValueError(f"`{key}`: a pair [source-language file, target-language file]")
        return self


class HubDataset(Strict):
    kind: Literal["hub"]
    # Anything datasets.load_dataset accepts: a hub id, or a builder such as "csv" with data_files.
    path: str
    config: str | None = None
    data_files: dict[str, str] | str | None = None
    # Split names in the dataset; missing validation/test are carved out of train with the seed.
    train_split: str = "train"
    validation_split: str | None = None
    test_split: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    label_map: LabelMap = {}
    # translation: a column per language; "translation.en" reads key `en` of a `translation` dict column
    # (the WMT/OPUS layout). QA datasets need SQuAD's columns: question, context, answers.
    source_column: str = "source"
    target_column: str = "target"
    revision: str | None = None


Corpus = Annotated[PackagedCorpus | LocalFiles | HubDataset, Field(discriminator="kind")]


class DataParams(Strict):
    source: Corpus
    target: Corpus
    # Class names (classification only; QA and translation have no label set).
    labels: list[str] = []
    # Fractions carved out of train for splits a corpus does not ship.
    validation_fraction: float = Field(0.1, gt=0, lt=0.5)
    test_fraction: float = Field(0.2, gt=0, lt=0.5)
    # Valid source train examples kept after cleaning (0 = keep all): the main lever on the run time.
    source_train_max: int = Field(0, ge=0)
    # Valid labeled target train examples kept after cleaning (0 = all); the rest become unlabeled target text.
    target_train_labeled: int = Field(200, ge=0)


class CleanParams(Strict):
    fix_unicode: bool = True
    mask_urls: bool = True
    mask_mentions: bool = False
    min_chars: int = Field(3, ge=1)
    max_chars: int = Field(5000, ge=1)
    dedup: Literal["none", "exact", "normalized"] = "normalized"
    leakage_guard: bool = True


class AugmentParams(Strict):
    # Extra EDA-style copies of each labeled target train example (0 = off).
    n_aug: int = Field(0, ge=0, le=16)
    # Fraction of words an EDA operation touches.
    alpha: float = Field(0.1, gt=0, le=0.5)
    operations: list[Literal["synonym", "swap", "delete", "insert"]] = Field(
        default=["synonym", "swap", "delete", "insert"], min_length=1)
    # Synonyms are nearest neighbours in the base model's input embeddings above this cosine.
    synonym_min_similarity: float = Field(0.55, ge=0, le=1)
    synonym_top_k: int = Field(5, ge=1)
    rebalance: Literal["none", "oversample", "undersample", "class_weights"] = "none"


class TokenizeParams(Strict):
    max_length: int = Field(256, ge=8)


class PretrainParams(Strict):
    enabled: bool = True
    max_length: int = Field(256, ge=8)
    mlm_probability: float = Field(0.15, gt=0, lt=1)
    # The packaged encoder has no MLM head: train the head alone first, then everything.
    head_warmup_epochs: float = Field(1.0, ge=0)
    head_learning_rate: float = Field(1e-3, gt=0)
    epochs: float = Field(2.0, ge=0)
    learning_rate: float = Field(5e-5, gt=0)
    batch_size: int = Field(16, ge=1)
    # Fraction of unlabeled target text held out for the before/after MLM loss.
    heldout_fraction: float = Field(0.15, gt=0, lt=0.5)


class JointParams(Strict):
    source_weight: float = Field(1.0, ge=0)
    target_weight: float = Field(1.0, ge=0)


class DannParams(Strict):
    gamma: float = Field(10.0, gt=0)          # steepness of the reversal-strength schedule
    domain_weight: float = Field(1.0, ge=0)   # weight of the domain-classification loss


class LoraParams(Strict):
    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.1, ge=0, lt=1)
    target_modules: list[str] = ["query", "value"]


STRATEGIES = ("target_only", "source_only", "sequential", "joint", "dann")


class FinetuneParams(Strict):
    # target_only: target labels alone; source_only: source labels alone (zero-shot on the target);
    # sequential: source, then target; joint: both in the same batches; dann: joint + domain-adversarial.
    strategy: Literal[STRATEGIES] = "sequential"
    peft: Literal["none", "lora"] = "none"
    learning_rate: float = Field(1.5e-4, gt=0)
    batch_size: int = Field(16, ge=1)
    target_epochs: float = Field(8.0, gt=0)
    source_epochs: float = Field(1.0, gt=0)
    source_learning_rate: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    # Pick the epoch with the best target-validation macro-F1.
    select_best: bool = True
    joint: JointParams = JointParams()
    dann: DannParams = DannParams()
    lora: LoraParams = LoraParams()


class DistillParams(Strict):
    keep_every: int = Field(2, ge=2)          # student keeps layers 0, k, 2k, ... of the teacher
    temperature: float = Field(2.0, gt=0)
    alpha: float = Field(0.5, ge=0, le=1)     # weight of the soft (teacher) loss; 1 - alpha on hard labels
    epochs: float = Field(6.0, gt=0)
    learning_rate: float = Field(1.5e-4, gt=0)


class CompareParams(Strict):
    # Each strategy x seed is trained from models/domain and scored on the target test split.
    strategies: list[Literal[STRATEGIES]] = Field(default=["source_only"], min_length=1)
    seeds: list[int] = Field(default=[42], min_length=1)


class LabelBudgetParams(Strict):
    # Labeled target examples per point of the label-budget curve; nested subsets, stratified by label. Sizes
    # at or above the labeled set are dropped with a note (that budget's point is the headline pair of models).
    sizes: list[Annotated[int, Field(ge=1)]] = Field(default=[25, 50, 100], min_length=1)
    seeds: list[int] = Field(default=[42], min_length=1)


class DomainShiftParams(Strict):
    # Texts per domain (sampled with the seed) embedded at each checkpoint: base, domain, target.
    sample_size: int = Field(500, ge=20)
    # Share of the sample held out to measure the domain classifier's error (proxy A-distance).
    heldout_fraction: float = Field(0.3, gt=0, lt=1)
    vocab_top_k: int = Field(1000, ge=10)
    projection: Literal["pca", "tsne"] = "pca"


class QaParams(Strict):
    # Contexts longer than tokenize.max_length are read in windows overlapping by doc_stride tokens.
    doc_stride: int = Field(64, ge=0)
    n_best: int = Field(20, ge=1)              # start / end candidates per window when decoding spans
    max_answer_length: int = Field(30, ge=1)   # tokens


class TranslationParams(Strict):
    max_source_length: int = Field(128, ge=8)
    max_target_length: int = Field(128, ge=8)
    num_beams: int = Field(4, ge=1)
    max_new_tokens: int = Field(128, ge=1)
    length_penalty: float = 1.0


class CheckpointParams(Strict):
    # Training phases without per-epoch evaluation save full state every this many steps (0: never);
    # phases that keep their best epoch save every epoch. Not a DVC param: it never changes results.
    every_steps: int = Field(100, ge=0)


class EvaluateParams(Strict):
    batch_size: int = Field(64, ge=1)
    # Gain (macro-F1 points) below -margin is flagged as negative transfer.
    negative_transfer_margin: float = Field(1.0, ge=0)


class Params(Strict):
    seed: int = 42
    # classification (default) | qa (extractive, SQuAD-style) | translation (seq2seq)
    task: Literal["classification", "qa", "translation"] = "classification"
    model: ModelParams = ModelParams()
    data: DataParams
    clean: CleanParams = CleanParams()
    augment: AugmentParams = AugmentParams()
    tokenize: TokenizeParams = TokenizeParams()
    pretrain_domain: PretrainParams = PretrainParams()
    finetune: FinetuneParams = FinetuneParams()
    evaluate: EvaluateParams = EvaluateParams()
    compare: CompareParams = CompareParams()
    label_budget: LabelBudgetParams = LabelBudgetParams()
    distill: DistillParams = DistillParams()
    domain_shift: DomainShiftParams = DomainShiftParams()
    checkpoint: CheckpointParams = CheckpointParams()
    qa: QaParams = QaParams()
    translation: TranslationParams = TranslationParams()

    @model_validator(mode="after")
    def keys_of_the_task(self) -> Params:
        """Classification-only knobs, and corpus keys of another task, are refused rather than ignored."""
        problems = []
        for domain in ("source", "target"):
            corpus = getattr(self.data, domain)
            if isinstance(corpus, PackagedCorpus) and self.task != "classification":
                problems.append(f"data.{domain}: the packaged corpora are classification data; give `files` or "
                                f"`hub` data for task {self.task}")
            if isinstance(corpus, LocalFiles) and TASK_FORMATS.get(corpus.format, self.task) != self.task:
                problems.append(f"data.{domain}.format: {corpus.format} is for task {TASK_FORMATS[corpus.format]}")
            for task, keys in TASK_COLUMNS.items():
                for key in sorted(set(keys) & corpus.model_fields_set):
                    if task != self.task:
                        problems.append(f"data.{domain}.{key}: a {task} key; task is {self.task}")
        if self.task == "classification":
            if len(self.data.labels) < 2:
                problems.append("data.labels: classification needs at least 2 class names")
        else:
            supported = ("target_only", "source_only", "sequential", "joint")
            strategies = sorted({self.finetune.strategy, *self.compare.strategies} - set(supported))
            checks = [
                (self.data.labels, "data.labels: class names are for classification; set []"),
                (self.augment.n_aug, "augment.n_aug: EDA rewrites words, which would move QA answer offsets and "
                                     "break translation pairs; set 0"),
                (self.augment.rebalance != "none", "augment.rebalance: there are no classes to rebalance; set none"),
                (strategies, f"finetune.strategy / compare.strategies: {', '.join(strategies)} need a label head "
                             f"(classification only); {self.task} supports {', '.join(supported)}"),
                ("joint" in {self.finetune.strategy, *self.compare.strategies} and self.finetune.joint != JointParams(),
                 "finetune.joint weights: the source and target examples of QA / translation train as one mixed "
                 "set, without per-domain loss weights; leave them at 1.0"),
            ]
            problems += [f"{message} (task: {self.task})" for failed, message in checks if failed]
        if self.task == "qa" and self.qa.doc_stride >= self.tokenize.max_length // 2:
            problems.append(f"qa.doc_stride: {self.qa.doc_stride} must be below half of tokenize.max_length "
                            f"({self.tokenize.max_length}): the question and the overlap share each window")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def class_weights_need_a_target_phase(self) -> Params:
        # Only the chosen strategy is refused: compare's entries without a target phase (source_only by default)
        # train unweighted, as the README says, so that `-S augment.rebalance=class_weights` works as it reads.
        if self.augment.rebalance == "class_weights" and self.finetune.strategy in ("joint", "dann", "source_only"):
            raise ValueError(f"augment.rebalance: class_weights applies to the target phase of target_only and "
                             f"sequential, not to finetune.strategy {self.finetune.strategy}; use oversample")
        return self

    @model_validator(mode="after")
    def budget_sizes_once(self) -> Params:
        # Sizes at or above the labeled set are not refused here: that set's size is known only after
        # clean, and label_budget drops them from the curve with a note.
        if len(set(self.label_budget.sizes)) != len(self.label_budget.sizes):
            raise ValueError("label_budget.sizes: each size once")
        return self

    @model_validator(mode="after")
    def labels_differ_beyond_case(self) -> Params:
        # clean matches labels whatever their case and surrounding spaces ("Positive " is positive).
        folded = [label.strip().casefold() for label in self.data.labels]
        if len(set(folded)) != len(folded):
            raise ValueError(f"data.labels: {self.data.labels} holds the same name twice (labels are matched "
                             f"whatever their case and surrounding spaces)")
        return self


CORPUS_KINDS = {"packaged", "files", "hub"}


def _describe(error: dict) -> str:
    # pydantic puts the union tag (`packaged`, ...) and validator names in the location: drop them.
    key = ".".join(str(part) for part in error["loc"]
                   if str(part) not in CORPUS_KINDS and not str(part).startswith("function-"))
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown key (typo?)"
    return f"  {key or '(top level)'}: {message}"


def parse_params(raw: dict, origin: str = "params.yaml") -> Params:
    try:
        return Params.model_validate(raw or {})
    except ValidationError as exc:
        lines = sorted({_describe(err) for err in exc.errors()})
        raise ParamsError(f"{origin} is invalid:\n" + "\n".join(lines)) from None


def load_params(path: Path = PARAMS_FILE) -> Params:
    if not path.exists():
        raise ParamsError(f"{path} not found: run the stages from the project root")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        # The context mark is where the broken construct starts (the key that lacks its `:`, the opening
        # bracket); the problem mark is where the parser gave up, often the line after.
        mark = getattr(exc, "context_mark", None) or getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ParamsError(f"{path}{where}: not valid YAML ({problem}); fix that line (indentation, a missing "
                          f"`:` or an unclosed quote or bracket)") from None
    if raw is not None and not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected keys and values (a YAML mapping), found a {type(raw).__name__}")
    return parse_params(raw, str(path))
