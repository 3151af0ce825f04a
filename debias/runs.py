"""Run directories: one folder per stage, written atomically, each with a manifest.

A stage writes into ``RUN_DIR/.<stage>.tmp-<token>/`` and, once everything is there, renames it
to ``RUN_DIR/<stage>/`` (replacing an older output). A crashed stage therefore never leaves a
half-written folder under the name the next stage reads. Run directories may be local paths or
pyarrow filesystem URIs (``s3://bucket/runs/x``); renames on object stores are copies, which
is still safe because the next stage only reads the final name.
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


@contextmanager
def stage_output(run_dir: str, stage: str, *, config: Any = None, inputs: list[str] | None = None,
                 seed: int | None = None) -> Iterator[StageWriter]:
    """Write a stage's output atomically and finish it with ``manifest.json``.

    The body fills ``writer.manifest`` (row counts, extra timings); config, inputs, seed,
    package versions and wall time are added here. On an exception the temp folder is removed
    and any previous output of the stage is left untouched.
    """
    fs, base = resolve_fs(run_dir)
    fs.create_dir(base, recursive=True)
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
        writer.write_json("manifest.json", manifest)
        final = join(base, stage)
        if fs.get_file_info(final).type != pafs.FileType.NotFound:
            old = join(base, f".{stage}.old-{secrets.token_hex(4)}")
            fs.move(final, old)
            fs.move(tmp, final)
            fs.delete_dir(old)
        else:
            fs.move(tmp, final)
        writer.path = final
    except BaseException:
        try:
            fs.delete_dir(tmp)
        except (OSError, FileNotFoundError):
            pass
        raise


def stage_path(run_dir: str, stage: str, *parts: str) -> str:
    fs, base = resolve_fs(run_dir)
    return join(base, stage, *parts) if "://" not in run_dir else join(run_dir, stage, *parts)


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
