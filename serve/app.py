"""The Ray Serve application: a FastAPI ingress over a dynamically batched classifier.

Three ways to deploy the same application:

* ``debias serve --config run.yaml [--run-dir DIR]`` calls :func:`run` (embedded local Ray,
  or the cluster in ``RAY_ADDRESS``);
* ``serve run serve.app:build_app model=/path/to/model`` (application builder);
* ``serve deploy serve/serve_config.yaml`` (the checked-in Serve config), or the KubeRay
  RayService in ``deploy/rayservice.yaml``.

Two deployments: ``Classifier`` (the ingress; loads the model, scores texts through one
batch queue, autoscaled: :class:`debias.serving.batching.GreedyBatcher` by default, Ray Serve's
``@serve.batch`` with ``serve.batcher=serve_batch``) and ``DecisionMonitor`` (one replica, no CPU reserved;
holds the sliding-window fairness monitor and the service counters, so ``/metrics`` and
``/v1/monitor`` show the whole service whichever replica answers). No request text is logged
or kept: the monitor receives only detected group names and 0/1 decisions.
"""


import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException

from debias.config import PipelineConfig, ServeConfig
from debias.serving.batching import GreedyBatcher
from debias.serving.monitor import FairnessMonitor
from debias.serving.requests import public_card
from serve.metrics import render_metrics
from serve.schemas import (
    AppSettings,
    ClassifyRequest,
    ClassifyResponse,
    CounterfactualRequest,
    CounterfactualResponse,
    Variant,
)

APP_NAME = "debias"
MAX_ERROR_DETAILS = 20  # entries of an error's details list
MONITOR_FLUSH_S = 0.2  # a replica sends its decisions to the monitor at most this often
logger = logging.getLogger("debias.serve")

fastapi_app = FastAPI(title="debias", description="Bias-aware text classification service")


# --------------------------------------------------------------------------------------------
# Bad input: every problem with a request body is a 4xx whose message names what is wrong.

def _where(loc: tuple) -> str:
    parts = [str(x) for x in loc if x != "body"]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def _reject(request: Request, status: int, message: str, reason: str,
            details: list[dict[str, Any]] | None = None) -> JSONResponse:
    hook = getattr(request.app.state, "on_reject", None)
    if hook is not None:
        hook(reason)
    return JSONResponse(status_code=status, content={"error": message, "details": details or []})


@fastapi_app.exception_handler(RequestValidationError)
async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        e = next(e for e in errors if e.get("type") == "json_invalid")
        ctx = e.get("ctx", {}).get("error", "")
        return _reject(request, 400, f"request body is not valid JSON: {ctx}".rstrip(": "), "invalid_json")
    msgs, details = [], []
    for e in errors:
        where = _where(tuple(e.get("loc", ())))
        got = e.get("input")
        # Never echo a long input back (it may be a whole text): type and a short preview only.
        found = type(got).__name__ if isinstance(got, (dict, list, str)) else repr(got)
        if e.get("type") == "missing":
            msgs.append(f"{where}: required field is missing")
        elif e.get("type") == "extra_forbidden":
            msgs.append(f"{where}: unknown field")
        else:
            msgs.append(f"{where}: {e.get('msg')} (found {found})")
        details.append({"loc": where, "type": e.get("type")})
    if len(details) > MAX_ERROR_DETAILS:  # a list of 20,000 bad items gets 20 entries, not 20,000
        details = [*details[:MAX_ERROR_DETAILS], {"loc": "body", "type": "truncated",
                                                  "more": len(details) - MAX_ERROR_DETAILS}]
    more = f" (and {len(msgs) - 10} more)" if len(msgs) > 10 else ""
    return _reject(request, 422, "; ".join(msgs[:10]) + more, "invalid_body", details)


class RequestGuard:
    """ASGI middleware: bearer auth, JSON-only bodies, a body size cap enforced while reading
    (413 before a large body is read in full), and :func:`debias.serving.requests.check_body`
    before FastAPI parses anything. Limits come from ``app.state.guard`` (set by the replica)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = getattr(scope.get("app"), "state", None)
        guard = getattr(state, "guard", None)
        if guard is None:
            return await self.app(scope, receive, send)
        from debias.serving import requests as R

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = None
        if guard["auth_digest"] and not scope.get("path", "").rstrip("/").endswith("/healthz"):
            refusal = R.check_bearer(headers.get("authorization"), digest=guard["auth_digest"])
        if refusal is None and scope.get("method") in ("POST", "PUT", "PATCH"):
            refusal = (R.check_content_type(headers.get("content-type"))
                       or R.check_declared_length(headers.get("content-length"), max_bytes=guard["max_bytes"]))
            if refusal is None:
                body, refusal = await self._read(receive, guard["max_bytes"])
                refusal = refusal or R.check_body(body, max_depth=guard["max_depth"])
                if refusal is None:
                    return await self.app(scope, self._replay(body), send)
        if refusal is None:
            return await self.app(scope, receive, send)
        hook = getattr(state, "on_reject", None)
        if hook is not None:
            hook(refusal.reason)
        extra = {"WWW-Authenticate": "Bearer"} if refusal.status == 401 else None
        await JSONResponse(status_code=refusal.status, headers=extra,
                           content={"error": refusal.message, "details": []})(scope, receive, send)

    @staticmethod
    async def _read(receive: Any, max_bytes: int) -> tuple[bytes, Any]:
        from debias.serving.requests import too_large

        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                break
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > max_bytes:
                return b"", too_large(max_bytes)
            chunks.append(chunk)
            if not msg.get("more_body", False):
                break
        return b"".join(chunks), None

    @staticmethod
    def _replay(body: bytes) -> Any:
        sent = False

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return {"type": "http.disconnect"}
        return receive


fastapi_app.add_middleware(RequestGuard)


@fastapi_app.exception_handler(StarletteHTTPException)
async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Unknown routes, wrong methods, unparseable bodies: the project's error shape, counted."""
    reason = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, f"http_{exc.status_code}")
    message = {404: f"no endpoint {request.url.path[:80]}",
               405: f"method {request.method} not allowed on {request.url.path[:80]}"}.get(
        exc.status_code, str(exc.detail)[:200])
    return _reject(request, exc.status_code, message, reason)


class RequestError(Exception):
    """A request the handler refuses (size limits): ``status`` and a ``reason`` for the counter."""

    def __init__(self, status: int, message: str, reason: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@fastapi_app.exception_handler(RequestError)
async def _request_error(request: Request, exc: RequestError) -> JSONResponse:
    return _reject(request, exc.status, str(exc), exc.reason)


# --------------------------------------------------------------------------------------------

def auth_digest(cfg: ServeConfig) -> str | None:
    """The bearer token's digest for a deployment: ``auth_token_sha256``, else the digest of the
    token in ``$auth_token_env`` on the deploying machine (the token itself never travels)."""
    from debias.serving.requests import token_digest

    if cfg.auth_token_sha256:
        return cfg.auth_token_sha256.lower()
    token = os.environ.get(cfg.auth_token_env) if cfg.auth_token_env else None
    return token_digest(token) if token else None


def identity_tools(settings: AppSettings) -> tuple[Any, Any, Any]:
    """``(lexicon, annotator, swap table)`` as preprocessing builds them; swaps cover the annotated
    axes that have a swap list."""
    from debias.identity.tools import identity_tools as build

    tools = build(axes=settings.annotate.axes, lexicon_dir=settings.annotate.lexicon_dir,
                  swap_dir=settings.swap_dir)
    return tools.lexicon, tools.annotator, tools.swaps


def decision_rule(settings: AppSettings) -> Any:
    """The rule the service decides with: with ``serve.decision_rule: model`` the one
    ``debias evaluate`` stored with the model (tuned global or per-group thresholds), else (or
    when the model has none) ``serve.threshold``."""
    from debias.evaluation.thresholds import GroupThresholds

    cfg = settings.serve
    stored = GroupThresholds.load(settings.model_dir) if cfg.decision_rule == "model" else None
    return stored or GroupThresholds.global_only(cfg.threshold, source="serve.threshold")


def class_names(model_dir: str | os.PathLike, card: dict[str, Any]) -> list[str]:
    """The label names: the card's ``class_names``, else the model config's ``id2label`` when it
    names two classes, else the project's default."""
    import json

    from debias.schema import CLASS_NAMES

    if card.get("class_names"):
        return list(card["class_names"])
    try:
        id2label = json.loads((Path(model_dir) / "config.json").read_text()).get("id2label") or {}
        names = [id2label[k] for k in sorted(id2label, key=int)]
        if len(names) == 2 and not all(n.startswith("LABEL_") for n in names):
            return names
    except (OSError, ValueError, KeyError):
        pass
    return list(CLASS_NAMES)


def model_version(model_dir: str | os.PathLike, card: dict[str, Any]) -> str:
    """The card's ``version`` if it has one, else the first 12 hex digits of the weights' SHA-256."""
    if card.get("version"):
        return str(card["version"])
    h = hashlib.sha256()
    weights = sorted(Path(model_dir).glob("*.safetensors"))
    for w in weights:
        with open(w, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()[:12]


def _plain(v: Any) -> Any:
    """numpy scalars to Python, NaN to None (JSON has no NaN)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    return v


@serve.deployment(num_replicas=1, max_ongoing_requests=1000, ray_actor_options={"num_cpus": 0})
class DecisionMonitor:
    """Service-wide state: the fairness window, counters and the batch sizes seen."""

    def __init__(self, serve_cfg: dict[str, Any]) -> None:
        cfg = ServeConfig.model_validate(serve_cfg)
        self.monitor = FairnessMonitor(window=cfg.monitor_window, bound=cfg.monitor_alert_bound,
                                       alpha=cfg.monitor_alpha, min_count=cfg.monitor_min_count)
        self.positives_total = 0
        self.batch_sizes: dict[int, int] = {}
        self.rejects: dict[str, int] = {}

    def observe(self, groups: list[list[str]], decisions: list[int], batch_sizes: list[int]) -> None:
        """Decisions of one or more batches (a replica sends what it collected since its last call)."""
        self.monitor.observe(groups, decisions)
        self.positives_total += int(sum(decisions))
        for b in batch_sizes:
            self.batch_sizes[b] = self.batch_sizes.get(b, 0) + 1

    def record_reject(self, reason: str) -> None:
        self.rejects[reason] = self.rejects.get(reason, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        report = [{k: _plain(v) for k, v in row.items()}
                  for row in self.monitor.report().to_dict(orient="records")]
        return {
            "window": self.monitor.window,
            "bound": self.monitor.bound,
            "alpha": self.monitor.alpha,
            "min_count": self.monitor.min_count,
            "counts": self.monitor.counts().to_dict(),
            "groups": report,
            "alerts": [r["group"] for r in report if r["alert"]],
            "texts_total": self.monitor.seen_,
            "positives_total": self.positives_total,
            "batch_sizes": {str(k): v for k, v in sorted(self.batch_sizes.items())},
            "rejects": dict(sorted(self.rejects.items())),
        }


@serve.deployment
@serve.ingress(fastapi_app)
class Classifier:
    """Scores texts; every text from every request goes through one batch queue."""

    def __init__(self, settings: dict[str, Any], monitor: DeploymentHandle) -> None:
        import torch

        from debias.evaluation.predict import Predictor
        from debias.training.model import read_model_card

        self.settings = AppSettings.model_validate(settings)
        cfg = self.settings.serve
        self.cfg = cfg
        # Threads are set explicitly: Ray sets OMP_NUM_THREADS from num_cpus (1 by default).
        torch.set_num_threads(cfg.torch_threads)
        self.predictor = Predictor(self.settings.model_dir, batch_size=cfg.max_batch_size,
                                   max_length=cfg.max_length, num_threads=cfg.torch_threads)
        self.card = read_model_card(self.settings.model_dir)
        self.version = model_version(self.settings.model_dir, self.card)
        self.rule = decision_rule(self.settings)
        self.rule_name = self.rule.constraint if self.rule.rules else "threshold"
        self.class_names = class_names(self.settings.model_dir, self.card)
        self._lexicon = None
        self._annotator = None
        self._swaps = None
        self._load_identity_tools()
        self.monitor = monitor
        self._pending: set[asyncio.Task] = set()
        self._observed: tuple[list, list, list] = ([], [], [])  # groups, decisions, batch sizes
        self._flush_scheduled = False
        self._score.set_max_batch_size(cfg.max_batch_size)
        self._score.set_batch_wait_timeout_s(cfg.batch_wait_timeout_s)
        # One text's score through the configured batcher (``serve.batcher``).
        self._submit = (GreedyBatcher(self._score_items, max_batch_size=cfg.max_batch_size,
                                      wait_s=cfg.batch_wait_timeout_s).submit
                        if cfg.batcher == "greedy" else self._score)
        fastapi_app.state.on_reject = self._on_reject
        fastapi_app.state.guard = {"max_bytes": cfg.max_body_bytes, "max_depth": cfg.max_json_depth,
                                   "auth_digest": self.settings.auth_digest or auth_digest(cfg)}  # or the replica's env
        try:
            self.replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # outside a replica (not expected in the service)
            self.replica = "local"

    def _load_identity_tools(self) -> None:
        self._lexicon, self._annotator, self._swaps = identity_tools(self.settings)

    # -- the batched path ---------------------------------------------------------------------

    def _score_sync(self, items: list[tuple[str, bool, bool]]) -> tuple[np.ndarray, list[list[str]], np.ndarray]:
        """Scores, detected groups and decisions for a batch (cleaned where asked)."""
        texts = [t for t, _, _ in items]
        raw = [i for i, (_, _, needs_clean) in enumerate(items) if needs_clean]
        if raw:  # one vectorised call per batch: cleaning one text at a time costs as much as 32
            for i, t in zip(raw, self._clean([texts[i] for i in raw]), strict=True):
                texts[i] = t
        scores = self.predictor.predict_texts(texts)
        groups = [list(g) for g in self._annotator.detect_groups(texts)]
        # The rule's randomised cells draw from the text, as evaluation did: same text, same decision.
        decisions = self.rule.predict(scores, groups, keys=texts)
        return scores, groups, decisions

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def _score(self, items: list[tuple[str, bool, bool]]) -> list[tuple[float, int]]:
        return await self._score_items(items)

    async def _score_items(self, items: list[tuple[str, bool, bool]]) -> list[tuple[float, int]]:
        # items: (text, observe, needs_clean). observe: a real decision the monitor counts
        # (counterfactual probes are scored here too but not counted); needs_clean: raw input.
        # Cleaning, the forward pass and group detection run in a thread so the event loop
        # keeps accepting requests and filling the next batch meanwhile. Returns (score, label).
        scores, groups, decisions = await asyncio.to_thread(self._score_sync, items)
        watched = [i for i, (_, o, _) in enumerate(items) if o]
        self._observed[0].extend(groups[i] for i in watched)
        self._observed[1].extend(int(decisions[i]) for i in watched)
        self._observed[2].append(len(items))
        if not self._flush_scheduled:  # one monitor call per interval, not one per batch
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(MONITOR_FLUSH_S, self._flush_observed)
        return [(float(s), int(d)) for s, d in zip(scores, decisions, strict=True)]

    def _flush_observed(self) -> None:
        groups, decisions, sizes = self._observed
        self._observed = ([], [], [])
        self._flush_scheduled = False
        if sizes:
            self._notify("observe", groups, decisions, sizes)

    def _notify(self, method: str, *args: Any) -> None:
        """Send to the monitor without waiting; a monitor outage never fails a request."""
        async def send() -> None:
            try:
                await getattr(self.monitor, method).remote(*args)
            except Exception as e:  # noqa: BLE001 - logged, and the request already answered
                logger.warning("monitor %s failed: %s", method, type(e).__name__)

        try:
            task = asyncio.get_running_loop().create_task(send())
        except RuntimeError:
            return
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def _on_reject(self, reason: str) -> None:
        self._notify("record_reject", reason)

    def _clean(self, texts: list[str]) -> list[str]:
        from debias.corpus.clean import clean_texts

        return clean_texts(texts, params=self.settings.clean)

    def _variants(self, raw: str) -> tuple[str, list[str], list[dict[str, str]]]:
        """Cleaned text, the groups it mentions, and its one-group swaps (off the event loop)."""
        from debias.identity.swaps import counterfactual_variants

        text = self._clean([raw])[0]
        groups = self._annotator.detect_groups([text])[0]
        return text, groups, counterfactual_variants(text, lexicon=self._lexicon, table=self._swaps)

    def _check_texts(self, texts: list[str], field: str) -> None:
        if len(texts) == 0:
            raise RequestError(422, f"{field}: expected at least 1 text; found an empty list", "empty")
        if len(texts) > self.cfg.max_texts:
            raise RequestError(413, f"{field}: at most {self.cfg.max_texts} texts per request; "
                                   f"found {len(texts)}", "too_many_texts")
        for i, t in enumerate(texts):
            if len(t) > self.cfg.max_chars:
                where = f"{field}[{i}]" if field == "texts" else field
                raise RequestError(413, f"{where}: at most {self.cfg.max_chars} characters per text; "
                                       f"found {len(t)}", "text_too_long")

    # -- endpoints ----------------------------------------------------------------------------

    @fastapi_app.post("/v1/classify", response_model=ClassifyResponse)
    async def classify(self, body: ClassifyRequest) -> ClassifyResponse:
        self._check_texts(body.texts, "texts")
        out = await asyncio.gather(*(self._submit((t, True, True)) for t in body.texts))
        return ClassifyResponse(scores=[s for s, _ in out], labels=[d for _, d in out],
                                label_names=[self.class_names[d] for _, d in out],
                                threshold=self.rule.threshold, decision_rule=self.rule_name,
                                model_version=self.version)

    @fastapi_app.post("/v1/counterfactual", response_model=CounterfactualResponse)
    async def counterfactual(self, body: CounterfactualRequest) -> CounterfactualResponse:
        self._check_texts([body.text], "text")
        text, groups, variants = await asyncio.to_thread(self._variants, body.text)
        if len(variants) > self.cfg.max_variants:
            raise RequestError(413, f"text: at most {self.cfg.max_variants} counterfactual variants per "
                                    f"request; this text has {len(variants)}", "too_many_variants")
        # The original counts as a decision for the monitor; its synthetic variants do not.
        scored = await asyncio.gather(self._submit((text, True, False)),
                                      *(self._submit((v["text"], False, False)) for v in variants))
        (base, base_label), rest = scored[0], scored[1:]
        # Each variant is decided by the rule of the groups it mentions (per-group thresholds
        # can flip a label that one global threshold would not: that is counted, not hidden).
        out = [Variant(axis=v["axis"], source_group=v["source_group"], target_group=v["target_group"],
                       text=v["text"], score=s, label=d, gap=s - base)
               for v, (s, d) in zip(variants, rest, strict=True)]
        return CounterfactualResponse(
            score=base, label=base_label, groups=list(groups), variants=out,
            max_gap=max((abs(v.gap) for v in out), default=0.0),
            label_flips=sum(v.label != base_label for v in out),
            threshold=self.rule.threshold, decision_rule=self.rule_name, model_version=self.version)

    @fastapi_app.get("/v1/model")
    async def model(self) -> dict[str, Any]:
        return {"model_version": self.version, "model_dir": Path(self.settings.model_dir).name,
                "threshold": self.rule.threshold, "decision_rule": self.rule.describe(),
                "class_names": self.class_names,
                "max_length": self.cfg.max_length,
                "card": public_card(self.card)}

    @fastapi_app.get("/v1/monitor")
    async def monitor_state(self) -> dict[str, Any]:
        return await self.monitor.snapshot.remote()

    @fastapi_app.get("/metrics")
    async def metrics(self) -> Response:
        snap = await self.monitor.snapshot.remote()
        body, content_type = render_metrics(snap, model_version=self.version)
        return Response(content=body, media_type=content_type)

    @fastapi_app.get("/healthz")
    async def healthz(self) -> dict[str, Any]:
        return {"status": "ok", "model_version": self.version, "replica": self.replica}


# --------------------------------------------------------------------------------------------
# Building and running.

def resolve_model_dir(serve_cfg: ServeConfig, run_dir: str | os.PathLike | None) -> str:
    """``serve.model`` if set, else ``RUN_DIR/train/model``; checked to be a safetensors model."""
    from debias.training.model import resolve_model_dir as resolve

    return resolve(serve_cfg.model, run_dir=run_dir, key="serve.model")


def settings_from_pipeline(cfg: PipelineConfig, run_dir: str | os.PathLike | None) -> AppSettings:
    return AppSettings(model_dir=resolve_model_dir(cfg.serve, run_dir), serve=cfg.serve,
                       clean=cfg.clean, annotate=cfg.annotate, swap_dir=cfg.augment.swap_dir,
                       auth_digest=auth_digest(cfg.serve))


def build_application(settings: AppSettings) -> serve.Application:
    """The bound application for :func:`serve.run` (deployment options from ``settings.serve``)."""
    s = settings.serve
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "OMP_NUM_THREADS": str(s.torch_threads)}
    monitor = DecisionMonitor.bind(s.model_dump())
    return Classifier.options(
        max_ongoing_requests=s.max_ongoing_requests,
        autoscaling_config={
            "min_replicas": s.min_replicas,
            "initial_replicas": max(1, s.min_replicas),
            "max_replicas": s.max_replicas,
            "target_ongoing_requests": s.target_ongoing_requests,
            "upscale_delay_s": s.upscale_delay_s,
            "downscale_delay_s": s.downscale_delay_s,
        },
        ray_actor_options={"num_cpus": s.num_cpus_per_replica, "runtime_env": {"env_vars": env}},
    ).bind(settings.model_dump(), monitor)


def build_app(args: dict[str, Any]) -> serve.Application:
    """Application builder for ``serve run serve.app:build_app k=v ...`` and Serve config files.

    Keys: ``config`` (a debias YAML; its serve/clean/annotate sections are used, data.path may
    be omitted), ``run_dir``, and any :class:`~debias.config.ServeConfig` field (``model``,
    ``threshold``, ``max_batch_size``, ...), which override the config file's values.
    """
    from debias.config import AnnotateConfig, CleanConfig, ConfigError, load_config

    args = dict(args or {})
    config_path = args.pop("config", None)
    run_dir = args.pop("run_dir", None)
    unknown = sorted(set(args) - set(ServeConfig.model_fields))
    if unknown:
        raise ValueError(f"unknown argument(s) {', '.join(unknown)}; expected config, run_dir or "
                         f"ServeConfig fields: {', '.join(ServeConfig.model_fields)}")
    if config_path:
        cfg = load_config(config_path, base={"data": {"path": "-"}})
        serve_doc, clean, annotate, swap_dir = cfg.serve.model_dump(), cfg.clean, cfg.annotate, cfg.augment.swap_dir
    else:
        serve_doc, clean, annotate, swap_dir = {}, CleanConfig(), AnnotateConfig(), None
    serve_doc.update(args)
    try:
        serve_cfg = ServeConfig.model_validate(serve_doc)
    except Exception as e:
        raise ConfigError(f"invalid serve arguments: {e}") from None
    settings = AppSettings(model_dir=resolve_model_dir(serve_cfg, run_dir), serve=serve_cfg,
                           clean=clean, annotate=annotate, swap_dir=swap_dir,
                           auth_digest=auth_digest(serve_cfg))
    return build_application(settings)


def deploy(settings: AppSettings, *, name: str = APP_NAME) -> str:
    """Start Serve's HTTP proxy on the configured host/port, deploy, return the base URL."""
    s = settings.serve
    serve.start(http_options={"host": s.host, "port": s.port})
    serve.run(build_application(settings), name=name, route_prefix="/")
    return f"http://{s.host}:{s.port}"
