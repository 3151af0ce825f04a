"""Is the run directory storage every node of the cluster can see?

On one node a local path is fine. On several nodes it is not: Ray Data's write tasks run on
whichever node has a free CPU, so parquet parts land on the local disks of different machines,
the driver's manifest counts only the parts on its own disk, and the next stage reads a partial
corpus without any error. So every job checks its run directory before it starts work:

- a filesystem URI (``s3://``, ``gs://``, ``abfs://``, ``hdfs://`` ...) is shared by definition;
- a local path (or ``file://``) on a cluster of one node is fine;
- a local path on several nodes, or on a head node that cannot run tasks itself (``num_cpus=0``,
  as in ``cluster.yaml``: work will run on nodes the autoscaler adds later), raises a
  ``ValueError`` that says what to do, unless the user says the path is a shared mount (NFS,
  EFS, Filestore, a Kubernetes ReadWriteMany volume) with ``DEBIAS_SHARED_FS=1``;
- with ``DEBIAS_SHARED_FS=1`` the claim is verified: the driver writes a marker file into the run
  directory and one task pinned to each alive node looks for it. A node that cannot see it is
  named in the error. This costs one tiny task per node (about a second).

The decision itself (:func:`shared_storage_problem`) is a pure function, unit-tested without Ray.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path

SHARED_FS_ENV = "DEBIAS_SHARED_FS"
_LOCAL_SCHEMES = ("file",)
_TRUE = {"1", "true", "yes", "on"}


def is_local_path(run_dir: str) -> bool:
    """True for a plain path or a ``file://`` URI; False for any other filesystem URI."""
    if "://" not in run_dir:
        return True
    return run_dir.split("://", 1)[0].lower() in _LOCAL_SCHEMES


def shared_fs_acknowledged(environ: Mapping[str, str] | None = None) -> bool:
    """Whether the user declared the local run directory to be a shared mount."""
    env = os.environ if environ is None else environ
    return env.get(SHARED_FS_ENV, "").strip().lower() in _TRUE


def shared_storage_problem(run_dir: str, *, alive_nodes: int, driver_node_has_cpus: bool = True,
                           acknowledged: bool = False,
                           nodes_not_seeing_marker: list[str] | None = None) -> str | None:
    """The reason ``run_dir`` is unsafe on this cluster, or None when it is safe.

    Parameters
    ----------
    run_dir : the run directory as the user gave it (path or URI).
    alive_nodes : alive Ray nodes, head included.
    driver_node_has_cpus : False when the node running the driver cannot run tasks (a head with
        ``num_cpus=0``): the work then runs on other nodes even if none has joined yet.
    acknowledged : the user declared a shared mount (``DEBIAS_SHARED_FS=1``).
    nodes_not_seeing_marker : after an acknowledged check, the nodes on which the marker file
        written by the driver was not visible (None: not verified).
    """
    if alive_nodes < 1:
        raise ValueError(f"alive_nodes must be >= 1; found {alive_nodes}")
    if not is_local_path(run_dir):
        return None
    multi = alive_nodes > 1 or not driver_node_has_cpus
    if not multi:
        return None
    if not acknowledged:
        where = (f"{alive_nodes} alive nodes" if alive_nodes > 1
                 else "a head node with no CPUs (tasks will run on worker nodes)")
        return (
            f"run directory {run_dir!r} is a local path, but this Ray cluster has {where}: each "
            "node would write its share of the output to its own disk and the next stage would "
            "read a partial corpus. Use shared storage: a filesystem URI such as "
            "s3://bucket/runs/NAME or gs://bucket/runs/NAME, or a path on a mount every node "
            f"shares (NFS, EFS, a ReadWriteMany volume) together with {SHARED_FS_ENV}=1 "
            "(e.g. ray job submit --runtime-env-json "
            f"'{{\"env_vars\": {{\"{SHARED_FS_ENV}\": \"1\"}}}}' ...)."
        )
    if nodes_not_seeing_marker:
        return (
            f"{SHARED_FS_ENV}=1 says {run_dir!r} is on a mount every node shares, but a file the "
            f"driver wrote there is not visible on node(s) {', '.join(sorted(nodes_not_seeing_marker))}. "
            "Mount the same volume at the same path on every node, or use an s3:// / gs:// run directory."
        )
    return None


def _nodes_not_seeing(marker: str, node_ids: list[str]) -> list[str]:
    """Run one tiny task pinned to each node; return the ids of nodes where ``marker`` is absent."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    @ray.remote(num_cpus=0)
    def _exists(path: str) -> bool:
        return os.path.exists(path)

    refs = {nid: _exists.options(scheduling_strategy=NodeAffinitySchedulingStrategy(nid, soft=False))
            .remote(marker) for nid in node_ids}
    return [nid for nid, ref in refs.items() if not ray.get(ref, timeout=120)]


def check_run_dir_shared(run_dir: str) -> None:
    """Raise ``ValueError`` when a local ``run_dir`` is used on a cluster of several nodes.

    Call it at the start of a job, after Ray is initialised (inside ``ray_session``). It does
    nothing when Ray is not initialised, for a URI run directory, or on a single node that runs
    tasks itself. See the module docstring for the rules and ``DEBIAS_SHARED_FS``.
    """
    import ray

    if not ray.is_initialized() or not is_local_path(run_dir):
        return
    alive = [n for n in ray.nodes() if n.get("Alive")]
    driver_node = ray.get_runtime_context().get_node_id()
    driver_cpus = next((n.get("Resources", {}).get("CPU", 0.0) for n in alive if n["NodeID"] == driver_node), 1.0)
    acknowledged = shared_fs_acknowledged()
    missing = None
    if acknowledged and len(alive) > 1:
        local = run_dir[len("file://"):] if run_dir.lower().startswith("file://") else run_dir
        base = Path(local).expanduser().resolve()
        base.mkdir(parents=True, exist_ok=True)
        marker = base / f".debias-shared-check-{secrets.token_hex(4)}"
        marker.write_text(driver_node)
        try:
            missing = _nodes_not_seeing(str(marker), [n["NodeID"] for n in alive])
        finally:
            marker.unlink(missing_ok=True)
    problem = shared_storage_problem(run_dir, alive_nodes=len(alive), driver_node_has_cpus=driver_cpus > 0,
                                     acknowledged=acknowledged, nodes_not_seeing_marker=missing)
    if problem:
        raise ValueError(problem)
