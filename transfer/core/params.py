"""The schema of params.yaml: types, bounds, choices and the rules across keys.

Values and what they mean live once, in params.yaml (its comments say why each value is what it is);
this file holds no defaults for the keys params.yaml lists, so a value cannot drift between the two,
and a key deleted from params.yaml is reported as missing rather than silently defaulted. Keys that
params.yaml leaves out on purpose (the optional columns and layouts of a `files` or `hub` corpus) keep
their defaults here, next to the comment that says what they mean.

Every stage validates the *whole* file at start-up, before any work: a typo in a key that
belongs to a later stage should stop the first stage, not surface an hour later. Rules that depend
on the task (which corpus keys, formats and strategies it takes) are the task's, checked by
`transfer.tasks.task_for` right after this schema.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from transfer.core.errors import ParamsError
from transfer.core.strategy_registry import STRATEGIES as STRATEGY_REGISTRY
from transfer.core.strategy_registry import get_strategy

PARAMS_FILE = Path("params.yaml")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelParams(Strict):
    name: str
    trust_remote_code: bool
    cpu_dropout_masks: Literal["numpy", "torch"]
    gradient_checkpointing: bool
    quantization: Literal["none", "4bit"]


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

class LocalFiles(Strict):
    kind: Literal["files"]
    # Either one file that is split with the seed, or one file per split. With format: aligned, each
    # is a pair [source-language file, target-language file].
    path: str | list[str] | None = None
    train: str | list[str] | None = None
    validation: str | list[str] | None = None
    test: str | list[str] | None = None
    # squad: SQuAD v1.1/v2.0 JSON (QA); aligned: two text files, one sentence per line (translation).
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
    labels: list[str]
    validation_fraction: float = Field(gt=0, lt=0.5)
    test_fraction: float = Field(gt=0, lt=0.5)
    source_train_max: int = Field(ge=0)
    target_train_labeled: int = Field(ge=0)


class CleanParams(Strict):
    fix_unicode: bool
    mask_urls: bool
    mask_mentions: bool
    min_chars: int = Field(ge=1)
    max_chars: int = Field(ge=1)
    dedup: Literal["none", "exact", "normalized"]
    leakage_guard: bool


class AugmentParams(Strict):
    n_aug: int = Field(ge=0, le=16)
    alpha: float = Field(gt=0, le=0.5)
    operations: list[Literal["synonym", "swap", "delete", "insert"]] = Field(min_length=1)
    synonym_min_similarity: float = Field(ge=0, le=1)
    synonym_top_k: int = Field(ge=1)
    rebalance: Literal["none", "oversample", "undersample", "class_weights"]


class TokenizeParams(Strict):
    max_length: int = Field(ge=8)


class PretrainParams(Strict):
    enabled: bool
    max_length: int = Field(ge=8)
    mlm_probability: float = Field(gt=0, lt=1)
    head_warmup_epochs: float = Field(ge=0)
    head_learning_rate: float = Field(gt=0)
    epochs: float = Field(ge=0)
    learning_rate: float = Field(gt=0)
    batch_size: int = Field(ge=1)
    heldout_fraction: float = Field(gt=0, lt=0.5)
    forgetting_texts: int = Field(ge=0)


class JointParams(Strict):
    source_weight: float = Field(ge=0)
    target_weight: float = Field(ge=0)


class DannParams(Strict):
    gamma: float = Field(gt=0)
    domain_weight: float = Field(ge=0)


class LoraParams(Strict):
    r: int = Field(ge=1)
    alpha: int = Field(ge=1)
    dropout: float = Field(ge=0, lt=1)
    target_modules: Literal["auto", "all-linear"] | list[str] = Field(min_length=1)


AUTO = "auto"  # finetune.strategy: chosen among finetune.auto.candidates by k-fold cross-validation


def registered(name: str, also: tuple[str, ...] = ()) -> str:
    """A strategy of the registry (transfer/core/strategy_registry.py), read when params are: one registered
    after this module is imported is valid too."""
    if name not in (*STRATEGY_REGISTRY, *also):
        known = [*STRATEGY_REGISTRY, *also]
        raise ValueError(f"unknown strategy `{name}`; choose one of {', '.join(known[:-1])} or {known[-1]}")
    return name


StrategyName = Annotated[str, AfterValidator(registered)]
StrategyChoice = Annotated[str, AfterValidator(lambda name: registered(name, also=(AUTO,)))]  # or auto


class WeightEnsemblingParams(Strict):
    mixes: list[Annotated[float, Field(ge=0, le=1)]] = Field(min_length=1)


class SelfTrainingParams(Strict):
    rounds: int = Field(ge=0)
    threshold: float = Field(ge=0, lt=1)
    share: float = Field(gt=0, le=1)
    epochs: float = Field(gt=0)


class KeepSourceParams(Strict):
    l2sp: float = Field(ge=0)
    replay: float = Field(ge=0)


class MixedMlmParams(Strict):
    weight: float = Field(ge=0)


class SetfitParams(Strict):
    iterations: int = Field(ge=1)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=2)
    body_learning_rate: float = Field(gt=0)
    source_examples: int = Field(ge=2)


class CandidateParams(Strict):
    """A strategy with its own finetune settings (a gentler target phase, an L2-SP strength ...)."""
    name: str = Field(pattern=r"^[A-Za-z0-9_.=-]+$")
    strategy: StrategyName
    finetune: dict[str, Any]


class AutoParams(Strict):
    candidates: list[StrategyName | CandidateParams] = Field(min_length=1)
    folds: int = Field(ge=2)

    @field_validator("candidates")
    @classmethod
    def each_once(cls, candidates: list) -> list:
        names = [candidate_name(c) for c in candidates]
        if len(set(names)) != len(names) or "baseline" in names:
            raise ValueError("each candidate once, under a name of its own (not `baseline`, the guard's)")
        return candidates


def candidate_name(candidate: str | CandidateParams) -> str:
    return candidate if isinstance(candidate, str) else candidate.name


def merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` applied key by key, nested mappings merged rather than replaced."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


PositiveFloat = Annotated[float, Field(gt=0)]


class FinetuneParams(Strict):
    strategy: StrategyChoice
    peft: Literal["none", "lora"]
    # One value, or a grid that every arm chooses from on target validation (transfer/training/tuning.py).
    learning_rate: PositiveFloat | Annotated[list[PositiveFloat], Field(min_length=1)]
    seed_offsets: list[Annotated[int, Field(ge=1)]]
    batch_size: int = Field(ge=1)
    target_epochs: float = Field(gt=0)
    source_epochs: float = Field(gt=0)
    source_learning_rate: float = Field(gt=0)
    weight_decay: float = Field(ge=0)
    warmup_ratio: float = Field(ge=0, lt=1)
    select_best: bool
    weight_ensembling: WeightEnsemblingParams
    self_training: SelfTrainingParams
    label_shift: Literal["none", "em"]
    logit_adjustment: list[Annotated[float, Field(ge=0)]] = Field(min_length=1)
    keep_source: KeepSourceParams
    mixed_mlm: MixedMlmParams
    setfit: SetfitParams
    auto: AutoParams
    joint: JointParams
    dann: DannParams
    lora: LoraParams

    @field_validator("seed_offsets")
    @classmethod
    def distinct_offsets(cls, offsets: list[int]) -> list[int]:
        if len(set(offsets)) != len(offsets):
            raise ValueError("each offset once: a repeated one trains the same model twice and narrows the interval")
        return offsets

    @property
    def learning_rates(self) -> list[float]:
        """The learning-rate grid (one value: a grid of one)."""
        return list(self.learning_rate) if isinstance(self.learning_rate, list) else [self.learning_rate]

    @model_validator(mode="after")
    def mixed_mlm_on_a_full_model(self) -> FinetuneParams:
        # Here, not on Params: an auto candidate's own finetune settings are checked by this class too.
        if self.mixed_mlm.weight > 0 and self.peft == "lora":
            raise ValueError("mixed_mlm shares the encoder between the classifier and the MLM head, which "
                             "LoRA adapters wrap; set mixed_mlm.weight: 0 or finetune.peft: none")
        if self.strategy != AUTO and get_strategy(self.strategy).setfit and self.peft == "lora":
            raise ValueError(f"strategy {self.strategy} fine-tunes the whole sentence-transformer contrastively "
                             f"and fits its head by logistic regression; set finetune.peft: none")
        return self


class DistillParams(Strict):
    enabled: bool
    teacher: Literal["trained", "zero_shot", "few_shot"]
    student: str = Field(min_length=1)
    keep_every: int = Field(ge=2)
    temperature: float = Field(gt=0)
    alpha: float = Field(ge=0, le=1)
    epochs: float = Field(gt=0)
    learning_rate: float = Field(gt=0)


class CompareParams(Strict):
    enabled: bool
    strategies: list[StrategyName] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)


class LaunchParams(Strict):
    command: str = Field(min_length=1)


class PromptingParams(Strict):
    enabled: bool
    methods: list[Literal["zero_shot", "few_shot"]]
    template: str = Field(pattern=r"\{text\}")
    verbalizers: dict[str, str]
    few_shot_k: int = Field(ge=1)
    max_text_tokens: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    chat_template: Literal["auto", "never"]
    instruction: str
    calibration: Literal["contextual", "none"]


class LabelBudgetParams(Strict):
    enabled: bool
    sizes: list[Annotated[int, Field(ge=1)]]  # [] = no curve (label_budget records that it measured none)
    seeds: list[int] = Field(min_length=1)


class DomainShiftParams(Strict):
    enabled: bool
    sample_size: int = Field(ge=20)
    heldout_fraction: float = Field(gt=0, lt=1)
    vocab_top_k: int = Field(ge=10)
    projection: Literal["pca", "tsne"]


class QaParams(Strict):
    doc_stride: int = Field(ge=0)
    n_best: int = Field(ge=1)
    max_answer_length: int = Field(ge=1)


class TranslationParams(Strict):
    max_source_length: int = Field(ge=8)
    max_target_length: int = Field(ge=8)
    num_beams: int = Field(ge=1)
    max_new_tokens: int = Field(ge=1)
    length_penalty: float


class CheckpointParams(Strict):
    # Not a DVC param of any stage: it never changes results.
    every_steps: int = Field(ge=0)


class EvaluateParams(Strict):
    batch_size: int = Field(ge=1)
    negative_transfer_margin: float = Field(ge=0)
    bootstrap_resamples: int = Field(ge=100)


class Params(Strict):
    seed: int
    # A name in the task registry (transfer/tasks): checked by transfer.tasks.task_for.
    task: str
    # Modules parse_params imports first (import_plugins): they register strategies and tasks.
    plugins: list[str]
    launch: LaunchParams
    model: ModelParams
    data: DataParams
    clean: CleanParams
    augment: AugmentParams
    tokenize: TokenizeParams
    pretrain_domain: PretrainParams
    finetune: FinetuneParams
    evaluate: EvaluateParams
    compare: CompareParams
    prompting: PromptingParams
    label_budget: LabelBudgetParams
    distill: DistillParams
    domain_shift: DomainShiftParams
    checkpoint: CheckpointParams
    qa: QaParams
    translation: TranslationParams

    @model_validator(mode="after")
    def quantization_trains_adapters(self) -> Params:
        if self.model.quantization == "none":
            return self
        if self.finetune.peft != "lora":
            raise ValueError("model.quantization: 4bit trains LoRA adapters over the frozen 4-bit weights (QLoRA); "
                             "set finetune.peft: lora")
        if self.finetune.weight_ensembling.mixes != [1.0] or self.finetune.keep_source.l2sp > 0:
            raise ValueError("model.quantization: 4bit: weight_ensembling and keep_source.l2sp act on full "
                             "weights; set weight_ensembling.mixes: [1.0] and keep_source.l2sp: 0")
        return self

    @model_validator(mode="after")
    def verbalizers_name_classes(self) -> Params:
        unknown = sorted(set(self.prompting.verbalizers) - set(self.data.labels))
        if unknown:
            raise ValueError(f"prompting.verbalizers: {unknown} are not classes of data.labels {self.data.labels}")
        return self

    @model_validator(mode="after")
    def class_weights_need_a_target_phase(self) -> Params:
        # Only the chosen strategy is refused: compare's entries without a target phase (source_only by default)
        # train unweighted, as the README says, so that `-S augment.rebalance=class_weights` works as it reads.
        strategies = ([c if isinstance(c, str) else c.strategy for c in self.finetune.auto.candidates]
                      if self.finetune.strategy == AUTO else [self.finetune.strategy])
        # Weighted: the target phase of target_only and sequential (SetFit fits its own head); no other strategy.
        unweighted = [s for s in strategies if s not in ("target_only", "sequential") and not get_strategy(s).setfit]
        if self.augment.rebalance == "class_weights" and unweighted:
            raise ValueError(f"augment.rebalance: class_weights applies to the target phase of target_only and "
                             f"sequential, not to finetune.strategy {', '.join(unweighted)}; use oversample")
        return self

    @model_validator(mode="after")
    def candidates_override_valid_finetune_keys(self) -> Params:
        for candidate in self.finetune.auto.candidates:
            if isinstance(candidate, CandidateParams):
                candidate_params(self, candidate)  # raises on an unknown key or a bad value
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
    if error["type"] == "value_error":
        message = message.removeprefix("Value error, ")  # our validators' messages name their keys
        return f"  {key}: {message}" if key else f"  {message}"
    return f"  {key or '(top level)'}: {message}"


def candidate_params(params: Params, candidate: str | CandidateParams) -> Params:
    """The params a finetune.auto candidate trains with: finetune.strategy set to its strategy, and a
    CandidateParams' finetune overrides applied (strategy and auto cannot be overridden)."""
    if isinstance(candidate, str):
        return params.model_copy(update={"finetune": params.finetune.model_copy(update={"strategy": candidate})})
    fixed = sorted({"strategy", "auto"} & set(candidate.finetune))
    if fixed:
        raise ValueError(f"finetune.auto.candidates {candidate.name}: finetune.{fixed[0]} is the candidate's own "
                         f"field or auto's; set `strategy:` beside `finetune:`")
    raw = merged(params.finetune.model_dump(mode="json"), {**candidate.finetune, "strategy": candidate.strategy})
    try:
        finetune = FinetuneParams.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(sorted({_describe(err).strip() for err in exc.errors()}))
        raise ValueError(f"finetune.auto.candidates {candidate.name}: {problems}") from None
    return params.model_copy(update={"finetune": finetune})


def import_plugins(names: object, origin: str = "params.yaml", root: Path | None = None) -> None:
    """Import each module `plugins` names, before validation: a strategy or task it registers is then a valid
    choice. Modules are found from `root` (the project: the params file's folder; default the working
    directory) as well as sys.path, so a console script finds them as `python -m stages...` does. A module
    imported before is not imported again (Python's import cache)."""
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise ParamsError(f"{origin}: plugins: expected a list of module names (e.g. [plugins.my_strategy]), "
                          f"got {names!r}")
    project = str((root or Path.cwd()).resolve())
    if names and project not in sys.path:
        sys.path.append(project)
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure of the user's module is reported as params' error
            raise ParamsError(f"{origin}: plugins: cannot import `{name}` ({type(exc).__name__}: {exc}); it must be "
                              f"importable from the project root (plugins/my_strategy.py is plugins.my_strategy)"
                              ) from exc


def parse_params(raw: dict, origin: str = "params.yaml", root: Path | None = None) -> Params:
    if isinstance(raw, dict) and "plugins" in raw:
        import_plugins(raw["plugins"], origin, root)
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
    return parse_params(raw, str(path), path.resolve().parent)
