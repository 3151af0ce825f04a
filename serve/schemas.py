"""Typed settings of the Serve application and its HTTP request/response bodies.

Items in requests are ``StrictStr``: a number or null where a text belongs is a 422 naming
its position, not a silently stringified "5". Size limits (texts per request, characters per
text) come from :class:`debias.config.ServeConfig` and are checked in the handler, because
they are configured per deployment rather than fixed in the schema, as is the rule that
``text_pairs`` holds one entry per text.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from debias.config import AnnotateConfig, CleanConfig, ServeConfig


class AppSettings(BaseModel):
    """Everything a replica needs, resolved before any cluster work (model_dir exists)."""

    model_config = ConfigDict(extra="forbid")

    model_dir: str
    serve: ServeConfig = Field(default_factory=ServeConfig)
    clean: CleanConfig = Field(default_factory=CleanConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    swap_dir: str | None = Field(None, description="counterfactual swap lists; default: packaged")
    auth_digest: str | None = Field(None, description="SHA-256 of the bearer token; None: no auth")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ClassifyRequest(_Body):
    texts: list[StrictStr] = Field(..., description="texts to score, in order")
    text_pairs: list[StrictStr] | None = Field(None, description=(
        "for a pair model (premise/hypothesis, question/passage): the second text of each row, one "
        "per text; row i is scored as the pair (texts[i], text_pairs[i])"))


class ClassifyResponse(_Body):
    scores: list[float] = Field(..., description=(
        "per text, the probability of score_class: class 1 for a binary model, the model card's "
        "focus class for a K-class one"))
    labels: list[int] = Field(..., description=(
        "the decision per text: binary, score >= threshold or the per-group rule stored with the model; "
        "K > 2 classes, the most probable class (argmax)"))
    label_names: list[str] = Field(default_factory=list, description="the class name of each label (the model's id2label)")
    probabilities: list[list[float]] = Field(..., description="per text, every class's probability in class-id order")
    class_names: list[str] = Field(..., description="the class names, in class-id order")
    score_class: str = Field(..., description="the class whose probability `scores` holds")
    threshold: float | None = Field(..., description=(
        "the global threshold (the whole rule without per-group cells); null for K > 2 classes"))
    decision_rule: str = Field("threshold", description="threshold, the per-group rule's constraint, or argmax (K > 2)")
    model_version: str


class CounterfactualRequest(_Body):
    text: StrictStr
    text_pair: StrictStr | None = Field(None, description="the second text of a pair; swaps rewrite both texts alike")


class Variant(_Body):
    axis: str
    source_group: str
    target_group: str
    text: str
    text_pair: str | None = Field(None, description="the pair's second text, with the same swap")
    score: float
    label: int
    probabilities: list[float]
    gap: float = Field(..., description="score - original score")


class CounterfactualResponse(_Body):
    score: float = Field(..., description="score of the (cleaned) original text")
    label: int
    probabilities: list[float] = Field(..., description="the original's class probabilities, class-id order")
    groups: list[str] = Field(..., description="identity groups detected in the text (both texts of a pair)")
    variants: list[Variant]
    max_gap: float = Field(..., description="largest |variant score - original score|; 0 without variants")
    label_flips: int = Field(..., description="variants whose label differs from the original's")
    threshold: float | None
    decision_rule: str = "threshold"
    model_version: str


class ErrorResponse(_Body):
    error: str
    details: list[dict[str, Any]] = Field(default_factory=list)
