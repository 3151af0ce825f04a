"""Run directories: one folder per stage, each committed by its manifest.

A stage writes into ``RUN_DIR/.<stage>.tmp-<token>/`` (a unique attempt prefix). Committing
depends on the filesystem:

- local (and any filesystem with directory renames): the attempt, manifest included, is renamed
  to ``RUN_DIR/<stage>/`` (an older output is first renamed aside, then deleted);
- object stores (S3, GCS: no directory rename; Arrow's ``move`` fails on a prefix): the old
  output's manifest is deleted first (it is no longer committed), its files deleted, the
  attempt's files copied to ``RUN_DIR/<stage>/``, and the manifest written there last.

Either way ``manifest.json`` is the commit marker: a folder without one is not a finished stage
(:func:`read_manifest` and :func:`committed_path` refuse it), so a crash at any step never passes
half an output to the next stage. Attempts left by a killed process (``.<stage>.tmp-*``,
``.<stage>.old-*``, which may hold raw text) are deleted when the stage next runs. Two runs of
the same stage into one run directory at the same time are not supported.
"""

from __future__ import annotations

import json
import platform
import secrets
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

STAGES = ("preprocess", "train", "evaluate", "report")
_TRACKED_PACKAGES = ("debias", "ray", "torch", "transformers", "pandas", "pyarrow", "numpy",
                     "scikit-learn", "pydantic")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def resolve_fs(uri: str) -> tuple[pafs.FileSystem, str]:
    """``(filesystem, path)`` for a local path or a pyarrow filesystem URI."""
    if "://" in uri:
        return pafs.FileSystem.from_uri(uri)
    return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())


def join(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *[p.strip("/") for p in parts]])


@dataclass
class StageWriter:
    """Handle given to a stage while it writes: ``path`` is the temp folder (same filesystem)."""

    run_dir: str
    stage: str
    path: str
    fs: pafs.FileSystem
    started: float = field(default_factory=time.time)
    manifest: dict[str, Any] = field(default_factory=dict)

    def sub(self, *parts: str) -> str:
        return join(self.path, *parts)

    def write_json(self, name: str, obj: Any) -> None:
        with self.fs.open_output_stream(self.sub(name)) as f:
            f.write(json.dumps(obj, indent=2, sort_keys=False, default=json_default).encode())

    def write_text(self, name: str, text: str) -> None:
        with self.fs.open_output_stream(self.sub(name)) as f:
            f.write(text.encode("utf-8"))


def json_default(o: Any) -> Any:
    """``json.dumps(default=...)`` for pydantic models, numpy scalars and arrays, and paths."""
    if hasattr(o, "model_dump"):
        return o.model_dump()
    if hasattr(o, "item"):
        return o.item()
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _is_local(fs: pafs.FileSystem) -> bool:
    return isinstance(fs, pafs.LocalFileSystem)


def _exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def clean_stale_attempts(fs: pafs.FileSystem, base: str, stage: str) -> list[str]:
    """Delete the attempt folders a killed run of ``stage`` left in ``base``; returns their names."""
    if not _exists(fs, base):
        return []
    gone = []
    for info in fs.get_file_info(pafs.FileSelector(base, recursive=False)):
        name = info.path.rstrip("/").rsplit("/", 1)[-1]
        if info.type == pafs.FileType.Directory and (name.startswith(f".{stage}.tmp-")
                                                     or name.startswith(f".{stage}.old-")):
            try:
                fs.delete_dir(info.path)
                gone.append(name)
            except (OSError, FileNotFoundError):
                pass
    return gone


def move_dir(fs: pafs.FileSystem, src: str, dst: str) -> None:
    """Move a folder on one filesystem: a rename where the filesystem has one, else (object
    stores) a copy of its files, then the source deleted."""
    if _is_local(fs):
        fs.move(src, dst)
        return
    pafs.copy_files(src, dst, source_filesystem=fs, destination_filesystem=fs)
    fs.delete_dir(src)


def _commit_by_copy(fs: pafs.FileSystem, tmp: str, final: str, manifest: bytes) -> None:
    """The object-store commit: uncommit the old output, replace its files, manifest last."""
    marker = join(final, "manifest.json")
    if _exists(fs, marker):
        fs.delete_file(marker)
    if _exists(fs, final):
        fs.delete_dir_contents(final)
    pafs.copy_files(tmp, final, source_filesystem=fs, destination_filesystem=fs)
    with fs.open_output_stream(marker) as f:
        f.write(manifest)
    fs.delete_dir(tmp)


def _commit_by_rename(fs: pafs.FileSystem, base: str, stage: str, tmp: str, final: str,
                      manifest: bytes) -> None:
    with fs.open_output_stream(join(tmp, "manifest.json")) as f:
        f.write(manifest)
    if _exists(fs, final):
        old = join(base, f".{stage}.old-{secrets.token_hex(4)}")
        fs.move(final, old)
        fs.move(tmp, final)
        fs.delete_dir(old)
    else:
        fs.move(tmp, final)


@contextmanager
def stage_output(run_dir: str, stage: str, *, config: Any = None, inputs: list[str] | None = None,
                 seed: int | None = None) -> Iterator[StageWriter]:
    """Write a stage's output under an attempt prefix and commit it with ``manifest.json``.

    The body fills ``writer.manifest`` (row counts, extra timings); config, inputs, seed,
    package versions and wall time are added here. On an exception the attempt is removed
    and any previous output of the stage is left untouched.
    """
    fs, base = resolve_fs(run_dir)
    fs.create_dir(base, recursive=True)
    clean_stale_attempts(fs, base, stage)
    tmp = join(base, f".{stage}.tmp-{secrets.token_hex(4)}")
    fs.create_dir(tmp, recursive=True)
    writer = StageWriter(run_dir=run_dir, stage=stage, path=tmp, fs=fs)
    try:
        yield writer
        manifest = {
            "stage": stage,
            "run_dir": run_dir,
            "inputs": list(inputs or []),
            "seed": seed,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(writer.started)),
            "wall_seconds": round(time.time() - writer.started, 3),
            **writer.manifest,
            "config": config.model_dump() if hasattr(config, "model_dump") else config,
            "versions": package_versions(),
        }
        body = json.dumps(manifest, indent=2, sort_keys=False, default=json_default).encode()
        final = join(base, stage)
        if _is_local(fs):
            _commit_by_rename(fs, base, stage, tmp, final, body)
        else:
            _commit_by_copy(fs, tmp, final, body)
        writer.path = final
    except BaseException:
        try:
            fs.delete_dir(tmp)
        except (OSError, FileNotFoundError):
            pass
        raise


def stage_path(run_dir: str, stage: str, *parts: str) -> str:
    """The path of ``stage`` (and ``parts`` inside it); a URI stays a URI, its query (an S3
    endpoint, a region) kept at the end where pyarrow reads it."""
    if "://" not in run_dir:
        return join(resolve_fs(run_dir)[1], stage, *parts)
    path, sep, query = run_dir.partition("?")
    return join(path, stage, *parts) + sep + query


def read_manifest(run_dir: str, stage: str) -> dict[str, Any]:
    """The manifest of a finished stage; a clear error if the stage has not run."""
    fs, base = resolve_fs(run_dir)
    path = join(base, stage, "manifest.json")
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        raise FileNotFoundError(
            f"stage '{stage}' has no output in {run_dir} (looked for {path}); run `debias {stage}` first"
        )
    with fs.open_input_stream(path) as f:
        return json.loads(f.read().decode())


def committed_path(run_dir: str, stage: str, *parts: str) -> str:
    """:func:`stage_path`, once the stage's manifest shows it committed (else a clear error)."""
    read_manifest(run_dir, stage)
    return stage_path(run_dir, stage, *parts)


def local_copy_dir(src: str, dst: Path) -> Path:
    """Copy a local or remote folder to a local folder (for loading models from object stores)."""
    fs, path = resolve_fs(src)
    if isinstance(fs, pafs.LocalFileSystem):
        return Path(path)
    dst.mkdir(parents=True, exist_ok=True)
    pafs.copy_files(path, str(dst), source_filesystem=fs, destination_filesystem=pafs.LocalFileSystem())
    return dst


def remove_local(path: str | Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
