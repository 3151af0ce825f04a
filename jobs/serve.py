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
from serve.app import APP_NAME, deploy, served_model_classes, settings_from_pipeline


def run(cfg: PipelineConfig, run_dir: str | None, *, blocking: bool = True) -> None:
    """``debias serve``: deploy on an embedded local Ray (or ``RAY_ADDRESS``) and block.

    The model dir, its classes (binary or K-class) and its card's class names and focus class
    are checked before Ray starts. With ``blocking=False`` the application is left running (and
    Ray with it) for the caller to stop with ``serve.shutdown()``.
    """
    settings = settings_from_pipeline(cfg, run_dir)
    served_model_classes(settings)
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
