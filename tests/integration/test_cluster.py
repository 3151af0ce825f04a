"""debias on a real multi-node Ray, on this machine.

1. ``ray start`` head + worker (token authentication on, as a user would run it), the preprocess
   job submitted with ``ray job submit --working-dir``, polled to SUCCEEDED through the Jobs REST
   API, its streamed log and outputs checked, the cluster stopped by PID.
2. ``ray.cluster_utils.Cluster``: the preprocess output on 3 nodes is identical (same rows, same
   manifest counts) to a single-node run; the shared-storage check refuses a local run directory
   on 3 nodes and verifies a declared shared mount on each node; a worker node killed while it
   runs a preprocessing task does not change a single output row.

The config files (cluster.yaml, deploy/rayjob.yaml) are validated here too, without Ray.
Stop-by-PID and private temp dirs: other engineers run their own Ray on this machine, so this
file never calls ``ray stop`` and never touches ~/.ray/auth_token (the token goes through
``RAY_AUTH_TOKEN`` in the environment of the processes started here).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from debias.config import load_config

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
ROWS = 1000
# Not shipped to the cluster with --working-dir (the cluster runs from this venv already).
EXCLUDES = [".venv", "runs", "bench/results", ".git", "*.egg-info", "**/__pycache__", ".pytest_cache"]
STARTUP_TIMEOUT_S = 240  # this machine is shared and often loaded; a quiet one needs ~10 s
JOB_TIMEOUT_S = 900


# ----------------------------------------------------------------------------- config files

def test_cluster_yaml_validates_against_the_ray_launcher_schema():
    from ray.autoscaler._private.util import validate_config

    cfg = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    validate_config(cfg)  # raises on an unknown key or a wrong type
    types = cfg["available_node_types"]
    assert types[cfg["head_node_type"]]["resources"] == {"CPU": 0}
    gpu = [t for t in types.values() if t["resources"].get("GPU")]
    cpu = [t for name, t in types.items() if name != cfg["head_node_type"] and not t["resources"].get("GPU")]
    assert gpu and cpu and all(t["min_workers"] == 0 for t in gpu + cpu)
    assert any("pip install" in c and "debias" in c for c in cfg["setup_commands"])
    starts = " ".join(cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"])
    assert starts.count("RAY_AUTH_MODE=token") == 2


def test_rayjob_runs_the_cli_on_shared_storage_with_token_auth_and_a_valid_config(tmp_path):
    docs = list(yaml.safe_load_all((ROOT / "deploy" / "rayjob.yaml").read_text()))
    job = next(d for d in docs if d["kind"] == "RayJob")
    cm = next(d for d in docs if d["kind"] == "ConfigMap")
    spec = job["spec"]
    assert spec["entrypoint"].split()[:2] == ["debias", "pipeline"]
    run_dir = spec["entrypoint"].split("--run-dir", 1)[1].split()[0]
    assert run_dir.startswith("s3://")
    assert spec["rayClusterSpec"]["authOptions"] == {"mode": "token"}
    assert spec["rayClusterSpec"]["rayVersion"] == "2.60.0"
    (tmp_path / "pipeline.yaml").write_text(cm["data"]["pipeline.yaml"])
    cfg = load_config(tmp_path / "pipeline.yaml")  # every key known to PipelineConfig
    assert cfg.train.use_gpu and cfg.data.path.startswith("s3://")


# ----------------------------------------------------------------------------- helpers

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _short_tmp(prefix: str) -> Path:
    # Ray's socket paths live under the temp dir and must stay under ~107 characters.
    d = Path("/tmp") / f"{prefix}-{secrets.token_hex(3)}"
    d.mkdir()
    return d


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from debias.corpus.demo import write_demo_corpus

    path = tmp_path_factory.mktemp("cluster-corpus") / "comments.parquet"
    write_demo_corpus(path, n_rows=ROWS, seed=3)
    return path


def _config_doc(corpus: Path) -> dict:
    return {"data": {"path": str(corpus), "text_col": "text", "label_col": "toxic", "id_col": "id"},
            "balance": {"strategy": "reweight"}, "augment": {"mode": "append", "axes": ["gender"]}}


def _output(run: Path) -> pd.DataFrame:
    parts = [pd.read_parquet(run / "preprocess" / s).assign(split=s) for s in ("train", "val", "test")
             if any((run / "preprocess" / s).glob("*.parquet"))]
    df = pd.concat(parts, ignore_index=True)
    df["groups"] = df["groups"].map(lambda g: ",".join(sorted(g)))
    return df.sort_values(["id", "is_augmented"]).reset_index(drop=True)


def _manifest_rows(run: Path) -> dict:
    return json.loads((run / "preprocess" / "manifest.json").read_text())["rows"]


def _stop_group(proc: subprocess.Popen, grace_s: float = 5.0) -> None:
    """SIGTERM, then SIGKILL, the process group this test started (raylets outlive SIGTERM)."""
    if proc.poll() is not None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # children may outlive a dead leader
        except ProcessLookupError:
            pass
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(30)


class RayStartCluster:
    """A head and worker started with ``ray start --block``, each in its own process group."""

    def __init__(self, workdir: Path, *, workers: int = 1, object_store_bytes: int = 150 * 2**20):
        self.workdir = workdir
        self.token = secrets.token_hex(32)  # this cluster's shared secret, never written to ~/.ray
        self.gcs_port, self.dashboard_port = _free_port(), _free_port()
        self.dashboard = f"http://127.0.0.1:{self.dashboard_port}"
        self.env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=self.token,
                        RAY_USAGE_STATS_ENABLED="0", HF_HUB_OFFLINE="1",
                        PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        self.env.pop("RAY_ADDRESS", None)
        self.procs: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.temp_dir = _short_tmp("dbc")
        common = [f"--object-store-memory={object_store_bytes}", "--num-cpus=1",
                  f"--dashboard-agent-listen-port={_free_port()}", "--disable-usage-stats"]
        try:
            self._start("head", ["--head", f"--port={self.gcs_port}", "--dashboard-host=127.0.0.1",
                                 f"--dashboard-port={self.dashboard_port}",
                                 f"--ray-client-server-port={_free_port()}",
                                 f"--temp-dir={self.temp_dir}", *common])
            self._wait(lambda: self.get("/api/version") is not None, "head dashboard")
            for i in range(workers):
                self._start(f"worker{i}", [f"--address=127.0.0.1:{self.gcs_port}",
                                           f"--object-store-memory={object_store_bytes}", "--num-cpus=1",
                                           f"--dashboard-agent-listen-port={_free_port()}",
                                           "--disable-usage-stats"])
            self._wait(lambda: self.alive_nodes() == workers + 1, f"{workers + 1} alive nodes")
        except BaseException:
            self.stop()
            raise

    def _start(self, name: str, args: list[str]) -> None:
        log = self.workdir / f"{name}.log"
        self.logs.append(log)
        self.procs.append(subprocess.Popen([str(VENV_BIN / "ray"), "start", "--block", *args], env=self.env,
                                           stdout=log.open("w"), stderr=subprocess.STDOUT,
                                           start_new_session=True))

    def _wait(self, ready, what: str) -> None:
        deadline = time.time() + STARTUP_TIMEOUT_S
        while time.time() < deadline:
            if ready():
                return
            dead = [log for p, log in zip(self.procs, self.logs, strict=True) if p.poll() is not None]
            if dead:
                raise RuntimeError(f"ray start exited while waiting for {what}:\n{dead[0].read_text()[-3000:]}")
            time.sleep(1)
        raise TimeoutError(f"no {what} after {STARTUP_TIMEOUT_S} s")

    def get(self, path: str, *, token: str | None = "self") -> dict | None:
        headers = {} if token is None else {"Authorization": f"Bearer {self.token if token == 'self' else token}"}
        try:
            with urllib.request.urlopen(urllib.request.Request(self.dashboard + path, headers=headers),
                                        timeout=30) as r:
                return json.loads(r.read().decode())
        except urllib.error.HTTPError:
            raise
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            return None

    def alive_nodes(self) -> int:
        out = self.get("/api/v0/nodes?limit=100")
        if not out:
            return 0
        return sum(n.get("state") == "ALIVE" for n in out["data"]["result"]["result"])

    def stop(self) -> None:
        for p in reversed(self.procs):
            _stop_group(p)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _http_status(cluster: RayStartCluster, path: str, token: str | None) -> int:
    try:
        cluster.get(path, token=token)
        return 200
    except urllib.error.HTTPError as e:
        return e.code


# ----------------------------------------------------------------------------- ray start + Jobs API

@pytest.mark.integration
@pytest.mark.slow
def test_preprocess_submitted_with_ray_job_submit_to_a_two_node_cluster(tmp_path, corpus):
    cluster = RayStartCluster(tmp_path, workers=1)
    try:
        # Token authentication is on: no token or a wrong one is refused.
        assert _http_status(cluster, "/api/jobs/", token=None) == 401
        assert _http_status(cluster, "/api/jobs/", token="0" * 64) == 403

        cfg_path = tmp_path / "job.yaml"
        cfg_path.write_text(yaml.safe_dump(_config_doc(corpus)))
        run = tmp_path / "run"
        sub_id = f"debias-test-{secrets.token_hex(3)}"
        # Both "nodes" share this machine's disk: declare the run directory a shared mount.
        # (Not HF_HUB_OFFLINE: the CLI's own ray.init sets it, and Ray refuses repeated keys.)
        runtime_env = {"excludes": EXCLUDES, "env_vars": {"DEBIAS_SHARED_FS": "1", "PYTHONUNBUFFERED": "1"}}
        submit = subprocess.run(
            [str(VENV_BIN / "ray"), "job", "submit", "--address", cluster.dashboard, "--submission-id", sub_id,
             "--working-dir", str(ROOT), "--runtime-env-json", json.dumps(runtime_env), "--no-wait", "--",
             "python", "-m", "jobs.cli", "preprocess", "--config", str(cfg_path), "--run-dir", str(run)],
            env=cluster.env, capture_output=True, text=True, timeout=600)
        assert submit.returncode == 0, submit.stdout + submit.stderr

        deadline, status = time.time() + JOB_TIMEOUT_S, None
        while time.time() < deadline:
            info = cluster.get(f"/api/jobs/{sub_id}")
            status = info and info["status"]
            if status in ("SUCCEEDED", "FAILED", "STOPPED"):
                break
            time.sleep(2)
        logs = (cluster.get(f"/api/jobs/{sub_id}/logs") or {}).get("logs", "")
        assert status == "SUCCEEDED", f"job {sub_id} ended {status}:\n{logs[-4000:]}"
    finally:
        cluster.stop()

    # Progress streamed to `ray job logs`: one line per phase and the row accounting.
    assert "[preprocess] read + clean + annotate + split" in logs
    assert "[preprocess] rows: read 1,000 = kept" in logs
    rows = _manifest_rows(run)
    assert rows["read"] == ROWS == rows["kept"] + rows["rejected"] + rows["duplicates"]
    out = _output(run)
    assert len(out) == rows["output"] == sum(rows["by_split"].values())
    assert out["id"].is_unique  # counterfactual rows carry "<source id>~cf"


# ----------------------------------------------------------------------------- 3 nodes in one process tree

@pytest.fixture(scope="module")
def own_ray():
    """This module's own Ray cluster in-process; a session Ray started earlier is restored after."""
    import ray

    had_session_ray = ray.is_initialized()
    if had_session_ray:
        ray.shutdown()
    yield ray
    if ray.is_initialized():
        ray.shutdown()
    if had_session_ray:  # the same arguments as tests/conftest.py's ray_local
        ray.init(num_cpus=2, include_dashboard=True, log_to_driver=False, configure_logging=True,
                 logging_level="ERROR")


def _run_preprocess(cfg, run: Path) -> dict:
    from jobs import preprocess
    from jobs.ray_session import ray_session

    with ray_session(cfg.ray):  # joins the Ray this test connected to
        return preprocess.run(cfg, str(run))


class _KillBusyWorker(threading.Thread):
    """Kill a worker node while it runs a preprocessing task, in whichever pass: once the
    stage has begun (its temporary output folder exists), the first node seen with its CPU
    in use. (Waiting for the first pass's files left only the last passes' sub-second tasks of
    this 1,000-row corpus to catch, and the killer sometimes caught none.)"""

    def __init__(self, cluster, nodes, run: Path):
        super().__init__(daemon=True)
        self.cluster, self.nodes, self.run_dir = cluster, nodes, run
        self.removed_at_stage_state: str | None = None
        self.stop_flag = threading.Event()

    def run(self) -> None:
        import ray

        while not self.stop_flag.is_set():
            started = any(self.run_dir.glob(".preprocess.tmp-*"))
            if started:
                # Ray omits a resource that is fully in use: no "CPU" key = its one CPU is busy.
                avail = ray._private.state.available_resources_per_node()
                for node in self.nodes:
                    if node.node_id in avail and avail[node.node_id].get("CPU", 0.0) < 1.0:
                        done = (self.run_dir / "preprocess" / "manifest.json").exists()
                        self.cluster.remove_node(node, allow_graceful=False)
                        self.removed_at_stage_state = "finished" if done else "running"
                        return
            time.sleep(0.05)


@pytest.mark.integration
@pytest.mark.slow
def test_three_nodes_match_one_node_and_survive_losing_a_worker(own_ray, tmp_path, corpus, monkeypatch):
    from ray.cluster_utils import Cluster

    from jobs.storage import SHARED_FS_ENV, check_run_dir_shared

    ray = own_ray
    cfg = load_config(base=_config_doc(corpus))
    monkeypatch.delenv(SHARED_FS_ENV, raising=False)
    tmp_ray = _short_tmp("dbk")
    node_args = {"object_store_memory": 150 * 2**20, "temp_dir": str(tmp_ray)}
    head_args = {**node_args, "include_dashboard": False, "dashboard_port": _free_port()}
    try:
        # One node: the reference run. A local run dir is fine on one node.
        single = Cluster(initialize_head=True, head_node_args={**head_args, "num_cpus": 2})
        try:
            ray.init(address=single.address, log_to_driver=False, logging_level="ERROR")
            check_run_dir_shared(str(tmp_path / "one"))
            _run_preprocess(cfg, tmp_path / "one")
        finally:
            ray.shutdown()
            single.shutdown()

        # Three nodes shaped like cluster.yaml: a head that runs no tasks, two 1-CPU workers.
        cluster = Cluster(initialize_head=True, head_node_args={**head_args, "num_cpus": 0,
                                                                  "dashboard_port": _free_port()})
        try:
            workers = [cluster.add_node(num_cpus=1, **node_args) for _ in range(2)]
            ray.init(address=cluster.address, log_to_driver=False, logging_level="ERROR")
            cluster.wait_for_nodes()
            assert sum(n["Alive"] for n in ray.nodes()) == 3

            # A local run dir is refused, with the fix in the message ...
            with pytest.raises(ValueError, match=r"local path, but this Ray cluster has 3 alive nodes.*s3://"):
                check_run_dir_shared(str(tmp_path / "three"))
            # ... unless declared a shared mount, then verified on every node (one disk here).
            monkeypatch.setenv(SHARED_FS_ENV, "1")
            check_run_dir_shared(str(tmp_path / "three"))
            assert not list((tmp_path / "three").glob(".debias-shared-check-*"))  # marker removed

            _run_preprocess(cfg, tmp_path / "three")

            # A worker node dies while it runs a task: Ray retries the lost tasks on the other.
            killer = _KillBusyWorker(cluster, workers, tmp_path / "fault")
            killer.start()
            try:
                _run_preprocess(cfg, tmp_path / "fault")
            finally:
                killer.stop_flag.set()
                killer.join(30)
            assert killer.removed_at_stage_state == "running", "no worker was busy mid-run to kill"
            # The GCS marks a killed node dead after its health checks fail: wait for it, bounded.
            deadline = time.time() + 60
            while sum(n["Alive"] for n in ray.nodes()) != 2 and time.time() < deadline:
                time.sleep(1)
            assert sum(n["Alive"] for n in ray.nodes()) == 2
        finally:
            ray.shutdown()
            cluster.shutdown()
    finally:
        shutil.rmtree(tmp_ray, ignore_errors=True)

    one = _manifest_rows(tmp_path / "one")
    assert one["read"] == ROWS
    ref = _output(tmp_path / "one")
    for name in ("three", "fault"):
        assert _manifest_rows(tmp_path / name) == one, name
        pd.testing.assert_frame_equal(_output(tmp_path / name), ref, obj=name)
