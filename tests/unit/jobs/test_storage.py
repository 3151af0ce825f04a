"""The shared-storage rule for run directories (jobs/storage.py), without Ray.

The Ray half (counting nodes, the marker probe) runs on a real 3-node cluster in
tests/integration/test_cluster.py.
"""

from __future__ import annotations

import pytest

from jobs.storage import SHARED_FS_ENV, is_local_path, shared_fs_acknowledged, shared_storage_problem


@pytest.mark.parametrize("run_dir,local", [
    ("runs/demo", True), ("/mnt/shared/runs/x", True), ("~/runs", True), ("file:///tmp/runs", True),
    ("FILE:///tmp/runs", True), ("s3://bucket/runs/x", False), ("gs://b/r", False),
    ("abfs://c@acct.dfs.core.windows.net/r", False), ("hdfs://nn:8020/r", False),
])
def test_is_local_path(run_dir, local):
    assert is_local_path(run_dir) is local


@pytest.mark.parametrize("value,expected", [
    ("1", True), ("true", True), (" YES ", True), ("on", True),
    ("0", False), ("", False), ("false", False), ("no", False), ("2", False),
])
def test_shared_fs_acknowledged_reads_the_env_var(value, expected):
    assert shared_fs_acknowledged({SHARED_FS_ENV: value}) is expected
    assert shared_fs_acknowledged({}) is False


def test_single_node_local_path_is_fine():
    assert shared_storage_problem("runs/x", alive_nodes=1) is None


def test_uri_is_fine_on_any_cluster_size():
    for n in (1, 3, 500):
        assert shared_storage_problem("s3://bucket/runs/x", alive_nodes=n) is None
        assert shared_storage_problem("gs://bucket/runs/x", alive_nodes=n, driver_node_has_cpus=False) is None


def test_local_path_on_several_nodes_names_the_path_the_node_count_and_the_fixes():
    msg = shared_storage_problem("runs/x", alive_nodes=3)
    assert msg is not None
    assert "'runs/x'" in msg and "3 alive nodes" in msg
    assert "s3://" in msg and "gs://" in msg and f"{SHARED_FS_ENV}=1" in msg


def test_file_uri_counts_as_local():
    assert shared_storage_problem("file:///tmp/runs", alive_nodes=2) is not None


def test_head_without_cpus_is_multi_node_even_before_workers_join():
    # An autoscaling cluster with min_workers=0 has one alive node when the job starts, but
    # every task will run on a worker that is not there yet.
    msg = shared_storage_problem("runs/x", alive_nodes=1, driver_node_has_cpus=False)
    assert msg is not None and "no CPUs" in msg


def test_acknowledged_shared_mount_passes_unless_a_node_cannot_see_the_marker():
    assert shared_storage_problem("/mnt/nfs/runs", alive_nodes=3, acknowledged=True) is None
    assert shared_storage_problem("/mnt/nfs/runs", alive_nodes=3, acknowledged=True,
                                  nodes_not_seeing_marker=[]) is None
    msg = shared_storage_problem("/mnt/nfs/runs", alive_nodes=3, acknowledged=True,
                                 nodes_not_seeing_marker=["node-b", "node-a"])
    assert msg is not None and "node-a, node-b" in msg and "not visible" in msg


def test_nonsense_node_count_is_rejected():
    with pytest.raises(ValueError, match="alive_nodes must be >= 1; found 0"):
        shared_storage_problem("runs/x", alive_nodes=0)
