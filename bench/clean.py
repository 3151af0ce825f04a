"""The clean step's cost with the old PII kinds only vs the full masker (issue 18), side by side.

    .venv/bin/python bench/clean.py --rows 200000 --pii-share 0.1 --repeats 3

Data: the project's demo corpus texts (generated, seed 0), a share of rows with one planted PII
value (cards, IBANs, SSNs, NINOs, IPs, MACs, national phones, IDN e-mails, handles) and as many
again with a look-alike that must stay (amounts, dates, versions, a Luhn-failing 16-digit
number). ``clean_batch`` runs over 50,000-row batches (the job's block size) with

* ``old kinds only``: every new ``mask_*`` switch off (cards, IBANs, SSNs, NINOs, IPs, MACs);
  e-mails, URLs, phones and handles still masked, by the new code;
* ``full masker``: the defaults (every kind on);
* ``before issue 18`` (when ``--baseline-rev`` names a commit; default ``0834c1c``): that
  commit's ``debias/corpus/clean.py``, read with ``git show``, same config.

Reported: the best of ``--repeats`` wall times (cases run round-robin), microseconds per row, the rows that went to the
Python pass (pre-check), and how many planted values (and look-alikes) are still in the output.
Prints one table and writes bench/results/clean.json.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from debias.config import CleanConfig  # noqa: E402
from debias.corpus import clean  # noqa: E402
from debias.corpus.demo import generate_demo_corpus  # noqa: E402
from debias.corpus.pii import PRECHECK  # noqa: E402

PLANTED = [
    "4111 1111 1111 1111", "5500-0000-0000-0004", "3782 822463 10005", "GB82 WEST 1234 5698 7654 32",
    "DE89370400440532013000", "123-45-6789", "QQ 12 34 56 C", "AB123456C", "192.168.1.10",
    "2001:db8::8a2e:370:7334", "00:1A:2B:3C:4D:5E", "020 7946 0958", "07700 900123", "030 12345678",
    "06 12 34 56 78", "98765 43210", "0044 20 7946 0958", "1-800-555-0199", "josé@bücher.de",
    '"john doe"@example.com', "u/some_name",
]
LOOK_ALIKES = ["$1,234.56", "1 234,56 €", "2019-2020", "in 1999", "order #123456", "v1.2.3", "3.11.4",
               "2024-01-15", "12:30:45", "45%", "4111 1111 1111 1112"]
NEW_FLAGS = ("mask_cards", "mask_ibans", "mask_ssns", "mask_ninos", "mask_ips", "mask_macs")


def corpus(rows: int, share: float, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Rows of demo text; ``share`` of them with a planted value, as many with a look-alike."""
    base = generate_demo_corpus(min(rows, 50_000), seed=seed)["text"].dropna().astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    texts = base[rng.integers(0, len(base), rows)].astype(object)
    which = rng.random(rows)
    planted = np.full(rows, None, dtype=object)
    alike = np.full(rows, None, dtype=object)
    for i in np.flatnonzero(which < share):
        planted[i] = PLANTED[rng.integers(len(PLANTED))]
        texts[i] = f"{texts[i]} reach me at {planted[i]} thanks"
    for i in np.flatnonzero((which >= share) & (which < 2 * share)):
        alike[i] = LOOK_ALIKES[rng.integers(len(LOOK_ALIKES))]
        texts[i] = f"{texts[i]} it was {alike[i]} back then"
    df = pd.DataFrame({"text": pd.Series(texts, dtype=object), "label": rng.integers(0, 2, rows)})
    return df, planted, alike


def old_module(rev: str):
    """``debias/corpus/clean.py`` as it was at ``rev`` (None when git cannot give it)."""
    try:
        src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:debias/corpus/clean.py"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp()) / "clean_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("clean_before", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run(mod, df: pd.DataFrame, params: dict, batch: int) -> tuple[float, list[str]]:
    t0 = time.perf_counter()
    out = []
    for a in range(0, len(df), batch):
        part = mod.clean_batch(df.iloc[a:a + batch], text_col="text", label_col="label", label_map={}, params=params)
        out.append(part["text"])
    dt = time.perf_counter() - t0
    return dt, pd.concat(out).tolist()


def left(texts: list[str], values: np.ndarray) -> int:
    return sum(1 for t, v in zip(texts, values, strict=True) if v is not None and v in t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--pii-share", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline-rev", default="0834c1c", help="commit for the 'before' row; '' to skip")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "clean.json"))
    a = ap.parse_args()

    df, planted, alike = corpus(a.rows, a.pii_share, a.seed)
    full = CleanConfig().model_dump()
    old_kinds = {**full, **{f: False for f in NEW_FLAGS}}
    arr = pa.array(df["text"], type=pa.string())
    prechecked = int(pc.sum(pc.match_substring_regex(arr, PRECHECK)).as_py())
    cases = [("old kinds only", clean, old_kinds), ("full masker", clean, full)]
    before = old_module(a.baseline_rev) if a.baseline_rev else None
    if before is not None:
        cases.insert(0, (f"before issue 18 ({a.baseline_rev})", before, full))

    # Round-robin over the cases, best time per case: a slow moment on the shared machine then
    # hits every case alike, not whichever ran during it.
    best = {name: float("inf") for name, _, _ in cases}
    texts: dict[str, list[str]] = {}
    for _ in range(a.repeats):
        for name, mod, params in cases:
            dt, texts[name] = run(mod, df, params, a.batch)
            best[name] = min(best[name], dt)
    rows = []
    for name, _, _ in cases:
        rows.append({"masker": name, "seconds": round(best[name], 3),
                     "us_per_row": round(best[name] / len(df) * 1e6, 2),
                     "planted_left": left(texts[name], planted), "planted": int(sum(v is not None for v in planted)),
                     "look_alikes_changed": int(sum(v is not None for v in alike)) - left(texts[name], alike)})

    print(f"{len(df):,} rows (demo texts; {a.pii_share:.0%} with a planted PII value, {a.pii_share:.0%} with a "
          f"look-alike), batches of {a.batch:,}, best of {a.repeats}; {prechecked:,} rows "
          f"({prechecked / len(df):.1%}) pass the digit pre-check")
    print(f"{'masker':30s} {'s':>7s} {'us/row':>7s} {'planted left':>13s} {'look-alikes changed':>20s}")
    for r in rows:
        print(f"{r['masker']:30s} {r['seconds']:7.2f} {r['us_per_row']:7.2f} "
              f"{r['planted_left']:>6,d}/{r['planted']:<6,d} {r['look_alikes_changed']:>20,d}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"args": vars(a), "rows_prechecked": prechecked, "results": rows}, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
