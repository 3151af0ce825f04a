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
or kept: the monitor receives only detected group names and decided class ids.

Binary and K-class models, single texts and text pairs: how probabilities become scores and
labels is :mod:`debias.serving.classes`, one batch of the queue :mod:`debias.serving.scoring`.
"""


import asyncio
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.exceptions import HTTPException as StarletteHTTPException

from debias.config import PipelineConfig, ServeConfig
from debias.serving.batching import GreedyBatcher
from debias.serving.classes import ARGMAX, ServedClasses, served_classes
from debias.serving.monitor import FairnessMonitor
from debias.serving.requests import public_card
from debias.serving.scoring import Item, score_items
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

    def __init__(self, serve_cfg: dict[str, Any], classes: list[str], score_class: int = 1) -> None:
        cfg = ServeConfig.model_validate(serve_cfg)
        self.classes = list(classes)
        self.monitor = FairnessMonitor(window=cfg.monitor_window, bound=cfg.monitor_alert_bound,
                                       alpha=cfg.monitor_alpha, min_count=cfg.monitor_min_count,
                                       n_classes=len(self.classes), positive=score_class)
        self.decisions_total = [0] * len(self.classes)
        self.batch_sizes: dict[int, int] = {}
        self.rejects: dict[str, int] = {}

    def observe(self, groups: list[list[str]], decisions: list[int], batch_sizes: list[int]) -> None:
        """Decisions of one or more batches (a replica sends what it collected since its last call)."""
        self.monitor.observe(groups, decisions)
        for d in decisions:
            self.decisions_total[d] += 1
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
            "positives_total": self.decisions_total[self.monitor.positive],
            "classes": self.classes,
            "positive_class": self.classes[self.monitor.positive],
            "decisions_total": list(self.decisions_total),
            "class_counts": self.monitor.class_counts().to_dict(),
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
        self.classes = served_classes(self.settings.model_dir, self.card)
        self.class_names = list(self.classes.names)
        if self.predictor.n_classes != self.classes.n:
            raise ValueError(f"the model has {self.predictor.n_classes} outputs but its config and card "
                             f"name {self.classes.n} classes ({', '.join(self.class_names)})")
        self.rule = decision_rule(self.settings)
        # K > 2 classes: the label is the argmax; per-group thresholds decide binary models only.
        self.rule_name = (ARGMAX if not self.classes.binary else
                          self.rule.constraint if self.rule.rules else "threshold")
        self.threshold = self.rule.threshold if self.classes.binary else None
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

    def _score_sync(self, items: list[Item]) -> Any:
        """Scores, labels, probabilities and detected groups of a batch (cleaned where asked)."""
        return score_items(items, predictor=self.predictor, annotator=self._annotator, clean=self._clean,
                           classes=self.classes, rule=self.rule)

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01)
    async def _score(self, items: list[Item]) -> list[tuple[float, int, list[float]]]:
        return await self._score_items(items)

    async def _score_items(self, items: list[Item]) -> list[tuple[float, int, list[float]]]:
        # Cleaning, the forward pass and group detection run in a thread so the event loop
        # keeps accepting requests and filling the next batch meanwhile. Returns, per item,
        # (score, label, class probabilities); the monitor counts the items marked observe.
        b = await asyncio.to_thread(self._score_sync, items)
        watched = [i for i, it in enumerate(items) if it.observe]
        self._observed[0].extend(b.groups[i] for i in watched)
        self._observed[1].extend(int(b.labels[i]) for i in watched)
        self._observed[2].append(len(items))
        if not self._flush_scheduled:  # one monitor call per interval, not one per batch
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(MONITOR_FLUSH_S, self._flush_observed)
        return [(float(s), int(d), p.tolist()) for s, d, p in zip(b.scores, b.labels, b.proba, strict=True)]

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

    def _variants(self, raw: str, raw_pair: str | None) -> tuple[str, str | None, list[str], list[dict[str, str]]]:
        """Cleaned text (and pair), the groups they mention, and the one-group swaps (off the event loop)."""
        from debias.identity.swaps import counterfactual_variants
        from debias.serving.counterfactual import pair_variants

        if raw_pair is None:
            text, pair = self._clean([raw])[0], None
            variants = counterfactual_variants(text, lexicon=self._lexicon, table=self._swaps)
        else:
            text, pair = self._clean([raw, raw_pair])
            variants = pair_variants(text, pair, lexicon=self._lexicon, table=self._swaps)
        groups = sorted({g for gs in self._annotator.detect_groups([text, pair]) for g in gs})
        return text, pair, groups, variants

    def _check_texts(self, texts: list[str] | None, field: str, expect: int | None = None) -> None:
        from debias.serving.requests import check_texts

        refusal = texts is not None and check_texts(texts, field=field, max_texts=self.cfg.max_texts,
                                                    max_chars=self.cfg.max_chars, expect=expect)
        if refusal:
            raise RequestError(refusal.status, refusal.message, refusal.reason)

    # -- endpoints ----------------------------------------------------------------------------

    @fastapi_app.post("/v1/classify", response_model=ClassifyResponse)
    async def classify(self, body: ClassifyRequest) -> ClassifyResponse:
        self._check_texts(body.texts, "texts")
        self._check_texts(body.text_pairs, "text_pairs", expect=len(body.texts))
        pairs = body.text_pairs or [None] * len(body.texts)
        out = await asyncio.gather(*(self._submit(Item(t, p)) for t, p in zip(body.texts, pairs, strict=True)))
        return ClassifyResponse(scores=[s for s, _, _ in out], labels=[d for _, d, _ in out],
                                label_names=[self.class_names[d] for _, d, _ in out],
                                probabilities=[p for _, _, p in out], class_names=self.class_names,
                                score_class=self.class_names[self.classes.score_class],
                                threshold=self.threshold, decision_rule=self.rule_name,
                                model_version=self.version)

    @fastapi_app.post("/v1/counterfactual", response_model=CounterfactualResponse)
    async def counterfactual(self, body: CounterfactualRequest) -> CounterfactualResponse:
        self._check_texts([body.text], "text")
        self._check_texts(None if body.text_pair is None else [body.text_pair], "text_pair")
        text, pair, groups, variants = await asyncio.to_thread(self._variants, body.text, body.text_pair)
        if len(variants) > self.cfg.max_variants:
            raise RequestError(413, f"text: at most {self.cfg.max_variants} counterfactual variants per "
                                    f"request; this text has {len(variants)}", "too_many_variants")
        # The original counts as a decision for the monitor; its synthetic variants do not.
        scored = await asyncio.gather(self._submit(Item(text, pair, True, False)),
                                      *(self._submit(Item(v["text"], v.get("text_pair"), False, False))
                                        for v in variants))
        (base, base_label, base_p), rest = scored[0], scored[1:]
        # Each variant is decided by the rule of the groups it mentions (per-group thresholds
        # can flip a label that one global threshold would not: that is counted, not hidden).
        out = [Variant(axis=v["axis"], source_group=v["source_group"], target_group=v["target_group"],
                       text=v["text"], text_pair=v.get("text_pair"), score=s, label=d, probabilities=p,
                       gap=s - base)
               for v, (s, d, p) in zip(variants, rest, strict=True)]
        return CounterfactualResponse(
            score=base, label=base_label, probabilities=base_p, groups=list(groups), variants=out,
            max_gap=max((abs(v.gap) for v in out), default=0.0),
            label_flips=sum(v.label != base_label for v in out),
            threshold=self.threshold, decision_rule=self.rule_name, model_version=self.version)

    @fastapi_app.get("/v1/model")
    async def model(self) -> dict[str, Any]:
        rule = (self.rule.describe() if self.classes.binary else
                {"constraint": ARGMAX, "threshold": None, "source": "the most probable class"})
        return {"model_version": self.version, "model_dir": Path(self.settings.model_dir).name,
                "threshold": self.threshold, "decision_rule": rule,
                "class_names": self.class_names, "score_class": self.class_names[self.classes.score_class],
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


def served_model_classes(settings: AppSettings) -> ServedClasses:
    """The served model's classes, read on the deploying machine (a card that disagrees with
    the model fails here, before any replica starts)."""
    from debias.training.model import read_model_card

    return served_classes(settings.model_dir, read_model_card(settings.model_dir))


def build_application(settings: AppSettings) -> serve.Application:
    """The bound application for :func:`serve.run` (deployment options from ``settings.serve``)."""
    s = settings.serve
    env = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_DISABLE_PROGRESS_BARS": "1",
           "OMP_NUM_THREADS": str(s.torch_threads)}
    classes = served_model_classes(settings)
    monitor = DecisionMonitor.bind(s.model_dump(), list(classes.names), classes.score_class)
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
