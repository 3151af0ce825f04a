"""Typed job configuration: pydantic models loaded from YAML, overridable with ``--set a.b=c``.

Every section forbids unknown keys, so a typo in a config file fails at load time with the
key's dotted path, before any cluster work starts. Configs travel to Ray workers as plain
dicts (``model_dump()``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from debias.lm.config import AuditLMConfig, FinetuneLMConfig
from debias.schema import CLASS_NAMES


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class IdentityColumns(_Section):
    """Identity annotations the corpus already has (e.g. Jigsaw's ``female`` score columns)."""

    columns: dict[str, str] = Field(
        default_factory=dict, description="group name -> source column holding a score or bool"
    )
    threshold: float = Field(0.5, ge=0.0, le=1.0)


class DataConfig(_Section):
    """Where the corpus is and which of its columns mean what."""

    path: str = Field(..., description="file, folder, glob or pyarrow filesystem URI")
    format: Literal["auto", "parquet", "csv", "tsv", "jsonl"] = "auto"
    text_col: str = "text"
    text_pair_col: str | None = Field(None, description=(
        "text-pair tasks (premise/hypothesis, question/passage, query/document): the column of each "
        "row's second text, kept as `text_pair`, cleaned and annotated like the first and tokenised "
        "with it as a pair in training, evaluation and serving"))
    label_col: str = "label"
    id_col: str | None = None
    identity: IdentityColumns = Field(default_factory=IdentityColumns)
    # Raw label values (as strings) -> class ids 0..K-1. Empty: labels must already be class ids
    # (or "0"/"1", true/false when binary, or the class names). Unmappable -> rejects with a reason.
    label_map: dict[str, int] = Field(default_factory=dict, description=(
        "raw label (as a string) -> class id 0..K-1, K = len(class_names); empty: the labels are "
        "already class ids, class names, or (binary) true/false"))
    class_names: list[str] = Field(default_factory=lambda: list(CLASS_NAMES), description=(
        "the name of each class id in order (two or more): the model's id2label, the service's label "
        "names and the report's words (e.g. [negative, positive] for sentiment, [hate, offensive, "
        "neither] for a 3-class task)"))
    label_threshold: float | None = Field(None, description=(
        "score labels: the label column holds a number (e.g. a toxicity fraction in [0, 1]); the class "
        "is 1 where score >= this, 0 below, and the raw score is kept as `label_score` (binary only)"))

    @field_validator("class_names")
    @classmethod
    def _class_names(cls, v: list[str]) -> list[str]:
        v = [str(c).strip() for c in v]
        if len(v) < 2 or not all(v) or len(set(v)) != len(v):
            raise ValueError(f"class_names must be two or more different non-empty names (class 0, 1, ...); found {v}")
        return v

    @model_validator(mode="after")
    def _labels_fit_classes(self) -> DataConfig:
        k = len(self.class_names)
        bad = {key: x for key, x in self.label_map.items() if not isinstance(x, int) or not 0 <= x < k}
        if bad:
            raise ValueError(f"label_map values must be class ids 0..{k - 1} (class_names has {k} names); found {bad}")
        if self.label_threshold is not None and k != 2:
            raise ValueError(f"label_threshold makes a binary label; class_names has {k} names")
        if self.label_threshold is not None and self.label_map:
            raise ValueError("label_threshold reads the label column as a score; label_map does not apply to it")
        if self.text_pair_col is not None and self.text_pair_col in (self.text_col, self.label_col):
            raise ValueError(f"text_pair_col {self.text_pair_col!r} must differ from text_col and label_col")
        return self

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


class CleanConfig(_Section):
    unicode_nfkc: bool = True
    strip_html: bool = True
    mask_urls: bool = True
    mask_emails: bool = True
    mask_phones: bool = True
    mask_users: bool = True  # @handle and reddit's u/name
    mask_cards: bool = True  # 16 digits (or Amex 4-6-5) passing Luhn
    mask_ibans: bool = True  # mod-97 checked
    mask_ssns: bool = True  # US, 123-45-6789
    mask_ninos: bool = True  # UK National Insurance numbers
    mask_ips: bool = True  # IPv4 and IPv6, checked by the ipaddress module
    mask_macs: bool = True
    lowercase: bool = False
    min_chars: int = Field(1, ge=0)
    max_chars: int = Field(5000, ge=1)
    dedup: bool = True


class AnnotateConfig(_Section):
    axes: list[str] = Field(
        default_factory=lambda: [
            "gender",
            "race_ethnicity",
            "religion",
            "sexual_orientation",
            "gender_identity",
            "disability",
            "age",
            "nationality",
        ]
    )
    lexicon_dir: str | None = Field(None, description="folder of <axis>.yaml; default: packaged")


class BalanceConfig(_Section):
    strategy: Literal["none", "reweight", "oversample", "undersample", "hybrid"] = "none"
    weighting: Literal["kamiran_calders", "inverse_frequency"] = "kamiran_calders"
    intersectional: bool = False


class AugmentConfig(_Section):
    mode: Literal["none", "append", "replace", "pairs"] = "none"
    axes: list[str] = Field(default_factory=lambda: ["gender"])
    probability: float = Field(0.5, ge=0.0, le=1.0, description="replace mode: swap probability")
    swap_dir: str | None = Field(None, description="folder of swap lists; default: packaged")


class SplitConfig(_Section):
    train: float = Field(0.8, gt=0.0, lt=1.0)
    val: float = Field(0.1, ge=0.0, lt=1.0)
    test: float = Field(0.1, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitConfig:
        total = self.train + self.val + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"train + val + test must be 1.0; found {total:.4f}")
        return self


# The training loss terms (implemented in debias/losses.py, which takes its list from here so
# that config validation needs no torch).
LossName = Literal[
    "cross_entropy",
    "group_loss_parity",
    "soft_demographic_parity",
    "soft_equalized_odds",
    "counterfactual_logit_pairing",
    "adversarial",
    "group_dro",
]


class LossTerm(_Section):
    name: LossName
    weight: float = Field(1.0, ge=0.0)
    params: dict[str, Any] = Field(default_factory=dict)


class TrainConfig(_Section):
    model: str | None = Field(None, description="local HF model dir; default: packaged MiniLM")
    seed: int | None = Field(None, description=(
        "training's own seed (weight init, shuffles, dropout); default: the run's `seed`. Set it to "
        "retrain on the same splits with other randomness (bench/fairness.py --seeds)"))
    num_workers: int = Field(1, ge=1)
    cpus_per_worker: int = Field(1, ge=1)
    use_gpu: bool = False
    epochs: int = Field(1, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.0, ge=0, le=1)
    max_length: int = Field(128, ge=8)
    freeze_embeddings: bool = False
    freeze_layers: int = Field(0, ge=0, description="freeze the lowest N encoder layers")
    losses: list[LossTerm] = Field(default_factory=lambda: [LossTerm(name="cross_entropy")])
    max_steps_per_epoch: int | None = Field(None, ge=1)
    shuffle: Literal["global", "local"] = Field(
        "global", description="global: one seeded shuffle of the training rows before training (file order "
        "puts supplements and counterfactual rows last); local: only the per-epoch window shuffle")
    early_stopping_patience: int | None = Field(None, ge=1)
    selection_metric: str = Field(
        "val_auc", description="validation objective to maximise, e.g. 'val_auc - 0.5*val_eo_difference'"
    )
    allow_no_val: bool = Field(False, description=(
        "train without a val split (none, or empty): the best checkpoint is then the lowest training "
        "loss, said in the log and the model card. Off: a missing val split is an error before Ray"))
    max_failures: int = Field(1, ge=0)
    checkpoints_to_keep: int = Field(1, ge=1)
    padding: Literal["dynamic", "fixed"] = Field(
        "dynamic", description="dynamic: pad each length-bucketed batch to its longest row"
    )
    bucket_window: int = Field(16, ge=1, description="batches per length-bucketing window")
    grad_clip: float | None = Field(1.0, gt=0)
    val_threshold: float = Field(0.5, ge=0.0, le=1.0)
    val_min_group_size: int = Field(10, ge=1, description="groups smaller than this skip fairness summaries")
    run_name: str | None = Field(None, description="Ray Train run name; default: unique per run")
    sweep_terms: list[str] = Field(
        default_factory=list, description="loss terms whose weight the sweep varies; default: all but CE"
    )
    sweep_weights: list[float] = Field(default_factory=lambda: [0.0, 0.3, 1.0, 3.0])


class SuiteConfig(_Section):
    name: str
    kind: Literal["test_split", "val_split", "identity_templates", "counterfactual_pairs", "labelled_file",
                  "minimal_pairs"]
    path: str | None = None
    text_col: str = "text"
    text_pair_col: str | None = Field(None, description="labelled_file of a pair task: the second text's column")
    label_col: str | None = None
    group_col: str | None = None
    pair_cols: list[str] = Field(default_factory=list)
    label_map: dict[str, int] = Field(default_factory=dict)
    limit: int | None = Field(None, ge=1, description="score a seeded sample of this many rows (pairs)")
    template_dir: str | None = Field(None, description="identity_templates: folder of <set>.yaml; default: packaged")
    template_sets: list[str] | None = Field(None, description="identity_templates: set names; default: "
                                            "every packaged set of `template_task`")
    template_task: str = Field("toxicity", description="identity_templates without template_sets: the task "
                               "whose sets to read (toxicity: neutral/toxic; sentiment: negative/positive)")


class EvaluateConfig(_Section):
    model: str | None = Field(None, description="model dir; default: RUN_DIR/train/model")
    threshold: float = Field(0.5, ge=0.0, le=1.0)
    focus_class: str | None = Field(None, description=(
        "the class whose probability is the score that the fairness metrics, thresholds, templates and "
        "report read (one class against the rest); default: class 1 (the positive class when binary). "
        "With more than two classes, per-class metrics for every class are reported beside it"))
    tune_threshold: bool = Field(False, description="use the F1-best threshold on the val_split suite "
                                 "(never the test split) for every suite, instead of `threshold`")
    tune_recall: float | None = Field(None, ge=0.0, le=1.0, description=(
        "with tune_threshold: instead of the F1-best, the highest threshold whose val_split recall "
        "reaches this value (e.g. the unmitigated model's validation recall), so a mitigated model "
        "gives up precision rather than detect less"))
    group_thresholds: Literal["none", "stored", "equal_opportunity", "false_positive_rate_parity",
                              "equalized_odds"] = Field("none", description=(
        "post-processing (Hardt et al. 2016): fit per-group decision thresholds on the val_split suite "
        "for this constraint and apply them to every suite; `stored`: apply the rule stored with the "
        "model (group_thresholds.json); `none`: one global threshold"))
    group_thresholds_min_rows: int = Field(30, ge=1, description=(
        "a group with fewer validation rows (or one label only) uses the pooled threshold"))
    store_rule: bool = Field(True, description=(
        "write the decision rule (global or per group) into the model dir as group_thresholds.json "
        "when the model is this run's own (RUN_DIR/train/model), so `debias serve` applies it; "
        "always written to RUN_DIR/evaluate/group_thresholds.json"))
    batch_size: int = Field(64, ge=1)
    max_length: int = Field(128, ge=8)
    num_actors: int = Field(1, ge=1)
    cpus_per_actor: int = Field(1, ge=1)
    use_gpu: bool = False
    suites: list[SuiteConfig] = Field(
        default_factory=lambda: [
            SuiteConfig(name="test", kind="test_split"),
            SuiteConfig(name="templates", kind="identity_templates"),
            SuiteConfig(name="counterfactual", kind="counterfactual_pairs"),
        ]
    )
    n_boot: int = Field(1000, ge=0)
    min_group_size: int = Field(30, ge=1)
    explain_top_k: int = Field(5, ge=0, description="worst cases explained per suite")
    explain_method: Literal["integrated_gradients", "occlusion", "shap"] = Field("integrated_gradients", description=(
        "word attributions of the worst cases; shap (the shap package's partition explainer over the "
        "model's tokenizer) also runs integrated gradients on the same cases and reports how often the two "
        "name the same top word"))
    shap_max_evals: int = Field(200, ge=10, description="shap: model calls per explained text")
    ig_steps: int = Field(32, ge=1, description="integrated gradients: Riemann-sum points")
    gates: list[str] = Field(default_factory=list)
    seed: int | None = None

    @model_validator(mode="after")
    def _tuning_needs_val(self) -> EvaluateConfig:
        if self.tune_threshold and not any(s.kind == "val_split" for s in self.suites):
            raise ValueError("tune_threshold needs a suite of kind val_split "
                             "(e.g. {name: val, kind: val_split}) to choose the threshold on")
        if self.tune_recall is not None and not self.tune_threshold:
            raise ValueError("tune_recall chooses the tuned threshold: set tune_threshold: true with it")
        if self.group_thresholds not in ("none", "stored") and not any(s.kind == "val_split" for s in self.suites):
            raise ValueError(f"group_thresholds: {self.group_thresholds} needs a suite of kind val_split "
                             "(e.g. {name: val, kind: val_split}) to fit the thresholds on")
        return self


class ServeConfig(_Section):
    model: str | None = Field(None, description="model dir; default: RUN_DIR/train/model")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    threshold: float = Field(0.5, ge=0.0, le=1.0, description=(
        "the decision threshold when the model dir holds no group_thresholds.json (or decision_rule: threshold)"))
    decision_rule: Literal["model", "threshold"] = Field("model", description=(
        "model: the rule `debias evaluate` stored with the model (tuned global or per-group thresholds), "
        "falling back to `threshold`; threshold: always `threshold`"))
    max_batch_size: int = Field(32, ge=1)
    batch_wait_timeout_s: float = Field(0.01, ge=0.0, description=(
        "greedy: how long a request reaching an idle model waits for company; serve_batch: "
        "how long every batch stays open after its first request"))
    batcher: Literal["greedy", "serve_batch"] = Field("greedy", description=(
        "greedy (debias.serving.batching): the next batch is everything queued when the model frees; "
        "serve_batch: Ray Serve's @serve.batch (closes each batch after its wait, busy or not)"))
    max_ongoing_requests: int = Field(64, ge=1)
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(2, ge=1)
    target_ongoing_requests: float = Field(16.0, gt=0)
    upscale_delay_s: float = Field(5.0, ge=0.0)
    downscale_delay_s: float = Field(30.0, ge=0.0, description="Serve's default is 600 s")
    num_cpus_per_replica: float = Field(1.0, gt=0)
    torch_threads: int = Field(1, ge=1, description=(
        "torch threads per replica; keep it at num_cpus_per_replica and scale with replicas "
        "(more replicas of one thread each served more texts/s than fewer, wider ones: docs/BENCHMARKS.md)"))
    max_texts: int = Field(256, ge=1)
    max_chars: int = Field(5000, ge=1)
    max_body_bytes: int = Field(8 * 1024 * 1024, ge=1024, description=(
        "request bodies larger than this are refused with a 413 before they are read"))
    max_json_depth: int = Field(32, ge=2, description="bodies nesting deeper are refused with a 400")
    max_variants: int = Field(64, ge=1, description=(
        "/v1/counterfactual: a text with more swap variants than this is refused with a 413"))
    auth_token_env: str | None = Field("DEBIAS_API_TOKEN", description=(
        "environment variable holding a bearer token; when it is set (on the driver at deploy "
        "time, or in the replicas' environment, e.g. a Kubernetes secret), every endpoint but "
        "/healthz requires `Authorization: Bearer <token>`"))
    auth_token_sha256: str | None = Field(None, description=(
        "the token's SHA-256 hex digest instead of the token itself (for Serve config files)"))
    max_length: int = Field(128, ge=8)
    monitor_window: int = Field(10000, ge=10)
    monitor_alert_bound: float = Field(0.1, ge=0.0, le=1.0)
    monitor_alpha: float = Field(0.01, gt=0.0, lt=1.0)
    monitor_min_count: int = Field(30, ge=1, description="texts a group and its rest need before an alert")

    @field_validator("max_ongoing_requests")
    @classmethod
    def _room_to_batch(cls, v: int, info: Any) -> int:
        # Serve admits at most max_ongoing_requests per replica: below the batch size, batches
        # never fill (Serve's default of 5 cut throughput 10-20x here; see RAY_NOTES.md).
        mbs = info.data.get("max_batch_size", 1)
        if v < mbs:
            raise ValueError(f"max_ongoing_requests must be >= max_batch_size ({mbs}); found {v}")
        return v

    @field_validator("max_replicas")
    @classmethod
    def _replica_range(cls, v: int, info: Any) -> int:
        lo = info.data.get("min_replicas", 0)
        if v < lo:
            raise ValueError(f"max_replicas must be >= min_replicas ({lo}); found {v}")
        return v


class RayConfig(_Section):
    address: str | None = Field(None, description="None: RAY_ADDRESS if set, else local Ray")
    num_cpus: int | None = Field(None, ge=1, description="local Ray only")
    include_dashboard: bool | None = Field(
        None, description="local Ray only. None: on for the commands that run Ray Train (its state API "
                          "needs it: train, sweep, pipeline), off otherwise (it costs ~4% of two cores)")


class PipelineConfig(_Section):
    """The whole run. Stages read only their own section plus ``data``/``seed``."""

    name: str = "debias"
    seed: int = 0
    data: DataConfig
    clean: CleanConfig = Field(default_factory=CleanConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    balance: BalanceConfig = Field(default_factory=BalanceConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    ray: RayConfig = Field(default_factory=RayConfig)
    audit_lm: AuditLMConfig | None = Field(None, description="`debias audit-lm`: bias audit of a generative LM")
    finetune_lm: FinetuneLMConfig | None = Field(
        None, description="`debias finetune-lm`: counterfactual data augmentation fine-tuning of a causal LM")

    @model_validator(mode="after")
    def _focus_is_a_class(self) -> PipelineConfig:
        f = self.evaluate.focus_class
        if f is not None and f not in self.data.class_names:
            raise ValueError(f"evaluate.focus_class {f!r} is not one of data.class_names {self.data.class_names}")
        return self

    @property
    def focus_id(self) -> int:
        """The class id of ``evaluate.focus_class`` (default 1)."""
        f = self.evaluate.focus_class
        return 1 if f is None else self.data.class_names.index(f)


class ConfigError(ValueError):
    """A config file or override that does not validate; the message names every bad key."""


def _parse_scalar(raw: str) -> Any:
    # YAML's scalar rules give "3" -> 3, "true" -> True, "[a, b]" -> list, "null" -> None.
    return yaml.safe_load(raw) if raw != "" else ""


def apply_overrides(doc: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides to a nested dict (values parsed as YAML scalars)."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects KEY=VALUE (e.g. train.epochs=2); found {item!r}")
        key, raw = item.split("=", 1)
        parts = [p for p in key.strip().split(".") if p]
        if not parts:
            raise ConfigError(f"--set has an empty key in {item!r}")
        node = doc
        for p in parts[:-1]:
            nxt = node.get(p)
            if nxt is None:
                nxt = node[p] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"--set {key}: {p!r} is a value, not a section")
            node = nxt
        node[parts[-1]] = _parse_scalar(raw)
    return doc


def _format_errors(err: ValidationError, source: str) -> str:
    lines = [f"invalid config ({source}):"]
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            from debias.config_docs import suggest_key  # imports this module: only when needed

            near = suggest_key(e["loc"])
            lines.append(f"  {loc}: unknown key" + (f" (did you mean {near!r}?)" if near else ""))
        elif e["type"] == "missing":
            lines.append(f"  {loc}: required key is missing")
        else:
            got = e.get("input")
            got_s = "" if isinstance(got, dict) else f" (found {got!r})"
            lines.append(f"  {loc}: {e['msg']}{got_s}")
    return "\n".join(lines)


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: dict[str, Any] | None = None) -> PipelineConfig:
    """Load a YAML config, apply ``--set`` overrides and validate.

    Parameters
    ----------
    path : YAML file, or None to start from ``base`` (or an empty document).
    overrides : ``["train.epochs=2", ...]``.
    base : a starting document (used by tests and the Python API).

    Raises
    ------
    ConfigError
        Naming every bad key with what was expected and what was found.
    """
    doc: dict[str, Any] = dict(base or {})
    source = "<dict>"
    if path is not None:
        p = Path(path)
        source = str(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {p} is not valid YAML: {e}") from e
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p} must hold a mapping at the top; found {type(loaded).__name__}")
        doc.update(loaded)
    doc = apply_overrides(doc, list(overrides or []))
    try:
        return PipelineConfig.model_validate(doc)
    except ValidationError as e:
        raise ConfigError(_format_errors(e, source)) from None
