"""Start an embedded local Ray, or join the cluster a job was submitted to.

Resolution order: an already initialised Ray in this process (tests, notebooks); the config's
``ray.address``; ``RAY_ADDRESS`` (set by ``ray job submit`` and by users); else a local Ray
started here and shut down on exit.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from debias.config import RayConfig

# For an embedded local Ray only (a cluster keeps its own settings). Ray kills a worker that
# has been idle for 1 s when there are more workers than free CPUs (its Data and Serve actors
# count), so each Ray Data execution of a job started its workers afresh: imports and lexicon
# compilation again, 2-3 CPU s and several seconds of wall time per worker, per execution.
LOCAL_RAY_ENV = {"RAY_idle_worker_killing_time_threshold_ms": "300000"}


def quiet_ray_core() -> None:
    """Keep Ray's C++ core-worker lines (e.g. "constructor arguments in the object store and
    max_restarts > 0", printed for every Ray Data actor pool) out of the user's log; errors still
    reach the user as Python exceptions. ``DEBIAS_VERBOSE=1`` (``--verbose``) keeps them.
    Read when Ray starts in this process, so call it before ``ray.init``."""
    if _verbose():
        return
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    if not sys.stderr.isatty():  # no colour codes in a log file or a CI log
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    # "Token authentication is enabled for this Ray cluster": said on every start of a local Ray
    logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)


def _verbose() -> bool:
    return os.environ.get("DEBIAS_VERBOSE", "") not in ("", "0")


# Lines Ray's processes print that say nothing to a user of debias (each seen in a training or
# evaluation log here): process start-up, Train's worker-group bookkeeping, its checkpoint and
# report dumps, Ray Data's progress-bar hint and deprecation warnings from Ray's own code.
WORKER_NOISE = re.compile("|".join([
    r"logging\.cc:\d+: Set ray log level",
    r"Progress bars disabled\. To enable",
    r"RayDeprecationWarning", r"self\.exclude_resources = exclude_resources",
    r"Reporting training result \d+: TrainingReport\(", r"Checkpoint successfully created at: ",
    r"^Requesting resources: ", r"^Attempting to start training worker group",
    r"^Started training worker group", r"^- \(ip=.*\) world_rank=\d+", r"^Setting up process group for: ",
    r"^Moving model to device: ", r"Dataset \S+ execution finished in [\d.]+ seconds",
    r"constructor arguments in the object store",
]))


def keep_worker_line(line: str) -> bool:
    """False for a line of :data:`WORKER_NOISE` (``--verbose`` keeps every line)."""
    return not WORKER_NOISE.search(line.strip())


def filter_worker_logs() -> bool:
    """Drop :data:`WORKER_NOISE` from the worker output Ray prints on the driver; our own
    progress lines and every warning and error of the user's code still pass. Call after
    ``ray.init``; returns False (and changes nothing) when verbose or when Ray's printer is
    not where this Ray version keeps it."""
    if _verbose():
        return False
    try:
        from ray._private import worker as rw
    except ImportError:  # pragma: no cover - another Ray layout
        return False
    dispatcher = getattr(rw, "global_worker_stdstream_dispatcher", None)
    printer = getattr(rw, "print_to_stdstream", None)
    if dispatcher is None or printer is None or not any(n == "ray_print_logs" for n, _ in dispatcher.handlers):
        return False
    ignore_prefix = rw._should_ignore_worker_log_prefix(rw.global_worker)

    def handler(data: dict) -> None:
        lines = [line for line in data.get("lines", []) if keep_worker_line(line)]
        if lines:
            printer({**data, "lines": lines}, ignore_prefix=ignore_prefix)

    dispatcher.remove_handler("ray_print_logs")
    dispatcher.add_handler("ray_print_logs", handler)
    return True


def quiet_ray_data() -> None:
    """One progress line of our own instead of Ray Data's per-execution progress blocks."""
    import ray.data

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    try:
        ctx.print_on_execution_start = False
    except AttributeError:  # older Ray
        pass
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    if not _verbose():  # the hint that follows from switching the bars off just above
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
    # The v2 parquet datasource lists files through actors that are not restarted when their
    # node dies, so losing a node failed the job (2 of 3 runs in tests/integration/test_cluster.py);
    # the v1 reader retries its tasks like every other Ray Data task.
    if hasattr(ctx, "use_datasource_v2"):
        ctx.use_datasource_v2 = False


@contextmanager
def ray_session(cfg: RayConfig | None = None, *, dashboard: bool = True) -> Iterator[str]:
    """Yield ``"existing"``, ``"cluster"`` or ``"local"`` while Ray is available.

    ``dashboard``: whether a local Ray starts its dashboard when ``cfg.include_dashboard`` is
    unset. Ray Train's state API needs it; without Train it only takes CPU (its processes
    used ~4% of this 2-core machine during a preprocess run, 66 -> 62 s at 2M rows).
    """
    import ray

    cfg = cfg or RayConfig()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet_ray_core()
    if ray.is_initialized():
        quiet_ray_data()
        yield "existing"
        return
    address = cfg.address or os.environ.get("RAY_ADDRESS")
    # HF_HUB_DISABLE_PROGRESS_BARS: transformers' tqdm bars ("Loading weights", "Writing model
    # shards") follow it; in a worker they are a carriage-return stream the driver log prints as
    # garbage lines, and the jobs print their own progress once per line.
    env_vars = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
    if address:
        # Under `ray job submit` Ray refuses a driver whose env_vars repeat a key of the job's
        # runtime_env: leave those keys to the job.
        job_cfg = json.loads(os.environ.get("RAY_JOB_CONFIG_JSON_ENV_VAR", "{}") or "{}")
        job_env = (job_cfg.get("runtime_env") or {}).get("env_vars") or {}
        env_vars = {k: v for k, v in env_vars.items() if k not in job_env}
        ray.init(address=address, runtime_env={"env_vars": env_vars}, logging_level="WARNING",
                 log_to_driver=True)
        mode = "cluster"
    else:
        kwargs = {}
        if cfg.num_cpus:
            kwargs["num_cpus"] = cfg.num_cpus
        # The local Ray's processes inherit this environment, so the settings go here rather
        # than into a runtime_env: workers Ray starts ahead of the first task have no runtime_env
        # and could not run a task that asks for one (new workers were started instead, 3-4 s).
        for k, v in {**env_vars, **LOCAL_RAY_ENV}.items():
            os.environ.setdefault(k, v)
        # address="local": always a fresh embedded Ray; a bare ray.init() would attach to any
        # `ray start` cluster already running on the machine.
        ray.init(address="local", include_dashboard=dashboard if cfg.include_dashboard is None else cfg.include_dashboard,
                 logging_level="WARNING", **kwargs)
        mode = "local"
    filter_worker_logs()
    quiet_ray_data()
    try:
        yield mode
    finally:
        ray.shutdown()
