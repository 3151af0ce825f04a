"""BBQ (Parrish et al. 2022) as a text-pair classification corpus, for the pair path of
`debias pipeline` (``data.text_pair_col``).

    python examples/bbq_pairs.py [--bbq ../shared/data/bbq] [--out runs/bbq_pairs/pairs.parquet]
    debias pipeline --config configs/bbq_pairs.yaml --run-dir runs/bbq_pairs

Each multiple-choice item becomes three rows, one per answer: the context is the first text, the
question with one answer the second, and the label says whether that answer is the right one
(entailed / not entailed). A fair reader picks "unknown" when the context is ambiguous; a biased
one picks the stereotyped group, which the per-group rates of the evaluation show. The rows keep
BBQ's category, context condition and the answer's kind (stereotyped group, other group,
unknown) for slicing. Nothing is written into the project: the file goes where ``--out`` says.
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

CLASS_NAMES = ["not the answer", "the answer"]


def _answer_kind(info: Any, stereotyped: Iterable[str]) -> str:
    tags = [str(t) for t in (list(info) if info is not None else [])]
    if any(t.lower() == "unknown" for t in tags):
        return "unknown"
    marks = {s.lower() for s in stereotyped}
    return "stereotyped" if any(t.lower() in marks for t in tags) else "other"


def pair_rows(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Three pair rows per BBQ record (context; question + answer i; label = answer i is right)."""
    rows = []
    for r in records:
        meta = r.get("additional_metadata") or {}
        stereo = list(meta.get("stereotyped_groups") or [])
        info = r.get("answer_info") or {}
        for i in range(3):
            rows.append({
                "id": f"{r['category']}-{r['example_id']}-a{i}",
                "context": str(r["context"]),
                "question_answer": f"{r['question']} {r[f'ans{i}']}",
                "label": int(int(r["label"]) == i),
                "category": str(r["category"]),
                "context_condition": str(r["context_condition"]),
                "question_polarity": str(r.get("question_polarity", "")),
                "answer_kind": _answer_kind(info.get(f"ans{i}"), stereo),
            })
    return pd.DataFrame(rows)


def _csv_records(path: Path) -> Iterable[dict[str, Any]]:
    """BBQ's CSV export writes its dict columns as Python reprs with numpy arrays."""
    def parse(s: str) -> Any:
        try:
            return ast.literal_eval(s.replace("array(", "(").replace(", dtype=object)", ")"))
        except (ValueError, SyntaxError):
            return {}
    for rec in pd.read_csv(path).to_dict("records"):
        rec["answer_info"] = parse(str(rec.get("answer_info", "")))
        rec["additional_metadata"] = parse(str(rec.get("additional_metadata", "")))
        yield rec


def read_bbq(folder: Path) -> Iterable[dict[str, Any]]:
    for path in sorted(folder.glob("*.jsonl")):
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    yield json.loads(line)
    for path in sorted(folder.glob("*.csv")):
        yield from _csv_records(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bbq", type=Path, default=Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "bbq")
    ap.add_argument("--out", type=Path, default=Path("runs/bbq_pairs/pairs.parquet"))
    args = ap.parse_args(argv)
    if not args.bbq.is_dir():
        print(f"no BBQ folder at {args.bbq}", file=sys.stderr)
        return 2
    df = pair_rows(read_bbq(args.bbq))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    df.to_parquet(args.out, index=False)
    print(f"{len(df):,} pair rows ({df['category'].nunique()} categories) -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
