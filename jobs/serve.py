"""`debias serve`: the service on an embedded local Ray (or the cluster at ``RAY_ADDRESS``).

The deployments themselves live in ``serve/app.py``; this module starts or joins Ray, deploys
them, and blocks until SIGINT/SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from contextlib import ExitStack

from ray import serve

from debias.config import PipelineConfig
from jobs.ray_session import ray_session
from serve.app import APP_NAME, deploy, settings_from_pipeline


def check_binary_model(model_dir: str) -> None:
    """The service decides one class against the rest with its thresholds and monitor; a model
    of more than two classes is refused here, before Ray starts, not served with wrong names."""
    import json
    from pathlib import Path

    try:
        conf = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return  # load_classifier names what is wrong with the directory
    k = int(conf.get("num_labels") or len(conf.get("id2label") or {}) or 2)
    if k > 2:
        raise ValueError(f"debias serve hosts binary classifiers; {model_dir} has {k} classes. Score it "
                         "offline with `debias evaluate` (per-class metrics), or serve a one-vs-rest model")


def run(cfg: PipelineConfig, run_dir: str | None, *, blocking: bool = True) -> None:
    """``debias serve``: deploy on an embedded local Ray (or ``RAY_ADDRESS``) and block.

    The model dir is checked before Ray starts. With ``blocking=False`` the application is left
    running (and Ray with it) for the caller to stop with ``serve.shutdown()``.
    """
    settings = settings_from_pipeline(cfg, run_dir)
    check_binary_model(settings.model_dir)
    stop = threading.Event()
    previous = {}
    try:
        with ExitStack() as stack:
            mode = stack.enter_context(ray_session(cfg.ray))
            if blocking:  # after ray.init, which installs its own SIGTERM handler
                previous = {sig: signal.signal(sig, lambda *_: stop.set())
                            for sig in (signal.SIGINT, signal.SIGTERM)}
            try:
                url = deploy(settings)
                print(f"debias serve: {url}  (POST /v1/classify, POST /v1/counterfactual, GET /v1/model, "
                      f"GET /v1/monitor, GET /metrics, GET /healthz)", flush=True)
                if not blocking:
                    stack.pop_all()  # keep Ray and the application up after returning
                    return
                while not stop.wait(0.5):
                    pass
                print("debias serve: stopping", flush=True)
            finally:
                if blocking:
                    if mode == "cluster":
                        serve.delete(APP_NAME)  # leave the cluster's Serve (and other apps) running
                    else:
                        serve.shutdown()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
