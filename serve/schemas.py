"""Typed settings of the Serve application and its HTTP request/response bodies.

Items in requests are ``StrictStr``: a number or null where a text belongs is a 422 naming
its position, not a silently stringified "5". Size limits (texts per request, characters per
text) come from :class:`debias.config.ServeConfig` and are checked in the handler, because
they are configured per deployment rather than fixed in the schema.
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


class ClassifyResponse(_Body):
    scores: list[float] = Field(..., description="probability of the positive class, per text")
    labels: list[int] = Field(..., description=(
        "the decision per text: score >= threshold, or the per-group rule stored with the model"))
    label_names: list[str] = Field(default_factory=list, description="the class name of each label (the model's id2label)")
    threshold: float = Field(..., description="the global threshold (the whole rule without per-group cells)")
    decision_rule: str = Field("threshold", description="threshold, or the per-group rule's constraint")
    model_version: str


class CounterfactualRequest(_Body):
    text: StrictStr


class Variant(_Body):
    axis: str
    source_group: str
    target_group: str
    text: str
    score: float
    label: int
    gap: float = Field(..., description="score - original score")


class CounterfactualResponse(_Body):
    score: float = Field(..., description="score of the (cleaned) original text")
    label: int
    groups: list[str] = Field(..., description="identity groups detected in the text")
    variants: list[Variant]
    max_gap: float = Field(..., description="largest |variant score - original score|; 0 without variants")
    label_flips: int = Field(..., description="variants whose label differs from the original's")
    threshold: float
    decision_rule: str = "threshold"
    model_version: str


class ErrorResponse(_Body):
    error: str
    details: list[dict[str, Any]] = Field(default_factory=list)
