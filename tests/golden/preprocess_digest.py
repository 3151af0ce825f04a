"""A stable digest of a preprocess output, to tell whether a change altered any output row.

Each split's rows (and the rejects) are read, sorted by id (ties, e.g. oversampled copies, by
the whole row), and every column of every row is hashed in a canonical text form (column
names sorted, values as JSON, floats by their shortest exact repr), so the digest depends on
the values only: not on file names, file count, row order or Arrow string types. The
manifest's row counts are part of it too.

    python tests/golden/preprocess_digest.py RUN_DIR/preprocess        # prints the digest JSON
    python tests/golden/preprocess_digest.py A/preprocess B/preprocess # compares two outputs
    python tests/golden/preprocess_digest.py local CORPUS.parquet CONFIG [KEY=VALUE ...]
        # the digest of run_local's output on CORPUS (also works on a checkout before issue 17)

Used by tests/integration/test_preprocess_golden.py, which also digests ``run_local``'s frames
(:func:`digest_frames`).
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SPLITS = ("train", "val", "test")
PARTS = (*SPLITS, "rejects")
ROW_KEYS = ("read", "rejected", "duplicates", "kept", "output")


def _canon(v: Any) -> Any:
    """A JSON-able, type-stable form of one cell (NaN and infinities spelled out)."""
    if isinstance(v, float):
        return repr(v) if math.isnan(v) or math.isinf(v) else v
    if isinstance(v, (list, tuple)):
        return [_canon(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _canon(x) for k, x in sorted(v.items())}
    if isinstance(v, bytes):
        return v.hex()
    return v


def digest_table(table: pa.Table | pd.DataFrame, *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """``rows`` and the SHA-256 of ``table``'s rows sorted by id, every column but ``drop``."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    table = table.drop_columns([c for c in drop if c in table.column_names])
    names = sorted(table.column_names)
    cols = {n: table[n].to_pylist() for n in names}
    lines = []
    for i in range(table.num_rows):
        row = {n: _canon(cols[n][i]) for n in names}
        lines.append((str(row.get("id")), json.dumps(row, sort_keys=True, ensure_ascii=True)))
    lines.sort()
    h = hashlib.sha256()
    h.update(json.dumps(names).encode())
    for _, line in lines:
        h.update(b"\n" + line.encode())
    return {"rows": table.num_rows, "sha256": h.hexdigest()}


def _read_folder(folder: Path) -> pa.Table | None:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return None
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive")


def digest_run(out_dir: str | Path) -> dict[str, Any]:
    """The digest of a ``RUN_DIR/preprocess`` folder: each split, the rejects, the row counts."""
    out_dir = Path(out_dir)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    parts = {}
    for name in PARTS:
        t = _read_folder(out_dir / name)
        parts[name] = digest_table(t, drop=("split",)) if t is not None else {"rows": 0, "sha256": None}
    rows = {k: manifest["rows"][k] for k in ROW_KEYS}
    rows["by_split"] = {s: manifest["rows"]["by_split"][s] for s in SPLITS}
    return _with_total({"parts": parts, "rows": rows})


def digest_frames(result: dict[str, Any]) -> dict[str, Any]:
    """The same digest of a ``debias.corpus.local.run_local`` result (one frame per output)."""
    out = result["output"]
    parts = {}
    for name in SPLITS:
        rows = out[out["split"] == name]
        parts[name] = digest_table(rows, drop=("split",)) if len(rows) else {"rows": 0, "sha256": None}
    rej = result["rejects"]
    parts["rejects"] = digest_table(rej) if len(rej) else {"rows": 0, "sha256": None}
    n_read, n_rej, n_dup = result["n_read"], result["n_rejected"], result["n_duplicates"]
    rows = {"read": n_read, "rejected": n_rej, "duplicates": n_dup, "kept": n_read - n_rej - n_dup,
            "output": len(out), "by_split": {s: parts[s]["rows"] for s in SPLITS}}
    return _with_total({"parts": parts, "rows": rows})


def local_digest(corpus: str | Path, *, config: str | Path, overrides: list[str]) -> dict[str, Any]:
    """:func:`digest_frames` of ``run_local`` on a parquet corpus under ``config`` + ``overrides``.

    Imports ``run_local`` from the current layout, or from the one before the stage packages
    (``debias.preprocess``), so the same call records a reference from an older checkout."""
    from debias.config import load_config

    try:
        from debias.corpus.local import run_local
    except ImportError:  # the layout before issue 17
        from debias.preprocess import run_local  # type: ignore[no-redef]
    cfg = load_config(str(config), [*overrides, f"data.path={corpus}"])
    return digest_frames(run_local(pd.read_parquet(corpus), cfg=cfg.model_dump()))


def _with_total(d: dict[str, Any]) -> dict[str, Any]:
    d["sha256"] = hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()
    return d


def main(argv: list[str]) -> int:
    if argv[:1] == ["local"]:  # local CORPUS.parquet CONFIG [KEY=VALUE ...]
        d = local_digest(argv[1], config=argv[2], overrides=argv[3:])
        print(json.dumps(d, indent=1, sort_keys=True))
        return 0
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    digests = [digest_run(p) for p in argv]
    for p, d in zip(argv, digests, strict=True):
        print(json.dumps({"path": p, **d}, indent=1, sort_keys=True))
    if len(digests) == 2:
        same = digests[0]["sha256"] == digests[1]["sha256"]
        print("identical" if same else "DIFFERENT", file=sys.stderr)
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
