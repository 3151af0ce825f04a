"""Resampling to (group, label) targets: our exact batch-wise passes vs the plain alternatives.

    .venv/bin/python bench/balance.py --rows 20000 --batches 8 --strategy hybrid

Data: the project's demo corpus, annotated with the packaged lexicon (every axis); cells are
(group key, label) as in ``debias.corpus.balance``; targets from ``target_counts``. Side by side:

* ``ours (K batches)``: ``u_histogram`` -> ``boundary_values`` -> ``thresholds`` ->
  ``apply_resample``, each pass run batch by batch over K batches (what the Ray job does), never
  holding more than one batch plus small count tables;
* ``plain collect + sample``: the whole corpus in one frame, ``groupby(cell).sample(n=T)`` (with
  replacement where T > n): exact, but needs everything in one process;
* ``plain Bernoulli per row``: streaming, each row copied floor(T/n) times plus once more with
  probability frac(T/n) (a generator per batch, as Ray workers would have): batch-wise but
  neither exact nor independent of the batching.

Reported: output rows, the largest and total |achieved - target| over cells, the largest gap
between a group's label rate and the overall rate after resampling, whether 1 batch and K
batches give identical rows, and seconds (the resampling only; counting and annotation excluded).
Prints one table and writes bench/results/balance.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from debias.corpus import balance, resample  # noqa: E402
from debias.corpus.demo import generate_demo_corpus  # noqa: E402
from debias.identity.annotate import IdentityAnnotator  # noqa: E402
from debias.identity.lexicon import available_axes, load_lexicon  # noqa: E402


def corpus(rows: int, seed: int) -> pd.DataFrame:
    df = generate_demo_corpus(rows, seed=seed)
    df = df[df["text"].notna() & df["toxic"].isin(["0", "1"])].drop_duplicates("text").reset_index(drop=True)
    groups = IdentityAnnotator(load_lexicon(available_axes()))(df[["text"]], text_col="text")["groups"]
    return pd.DataFrame({"id": df["id"], "groups": groups.to_numpy(), "label": df["toxic"].astype(int)})


def batches(df: pd.DataFrame, k: int) -> list[pd.DataFrame]:
    edges = np.linspace(0, len(df), k + 1).astype(int)
    return [df.iloc[a:b] for a, b in zip(edges[:-1], edges[1:], strict=True)]


def ours(parts: list[pd.DataFrame], plan: resample.ResamplePlan) -> pd.DataFrame:
    hist = resample.merge_u_histograms([resample.u_histogram(p, cells=plan) for p in parts])
    bins = resample.boundary_bins(plan, hist)
    bvals = pd.concat([resample.boundary_values(p, cells=plan, bin_index_per_cell=bins) for p in parts])
    th = resample.thresholds(plan, hist, bvals)
    return pd.concat([resample.apply_resample(p, plan=plan, thresholds=th) for p in parts], ignore_index=True)


def collect_sample(df: pd.DataFrame, plan: resample.ResamplePlan, cells: pd.Series, seed: int) -> pd.DataFrame:
    out = []
    for (g, y), sub in df.groupby([cells, df["label"]]):
        t = plan.cells[(g, int(y))].target
        out.append(sub.sample(n=t, replace=t > len(sub), random_state=seed))
    return pd.concat(out, ignore_index=True)


def bernoulli(parts: list[pd.DataFrame], plan: resample.ResamplePlan, seed: int) -> pd.DataFrame:
    out = []
    for i, p in enumerate(parts):
        rng = np.random.default_rng([seed, i])  # one generator per worker/batch, as in a Ray job
        keys = balance.cell_keys(p, intersectional=plan.intersectional, group_counts=plan.group_counts)
        rate = np.array(
            [
                plan.cells[(g, int(y))].target / plan.cells[(g, int(y))].n
                for g, y in zip(keys, p["label"], strict=True)
            ]
        )
        copies = np.floor(rate).astype(int) + (rng.random(len(p)) < rate - np.floor(rate))
        out.append(p.iloc[np.repeat(np.arange(len(p)), copies)])
    return pd.concat(out, ignore_index=True)


def score(out: pd.DataFrame, plan: resample.ResamplePlan) -> dict:
    got = balance.cell_counts(out, intersectional=plan.intersectional, group_counts=plan.group_counts)
    got_d = {(g, int(y)): int(n) for g, y, n in got.itertuples(index=False)}
    dev = [abs(got_d.get(c, 0) - p.target) for c, p in plan.cells.items()]
    keys = balance.cell_keys(out, intersectional=plan.intersectional, group_counts=plan.group_counts)
    rates = out.groupby(keys.to_numpy())["label"].mean()
    return {
        "rows": len(out),
        "max_abs_dev": int(max(dev)),
        "sum_abs_dev": int(sum(dev)),
        "max_label_rate_gap": float((rates - out["label"].mean()).abs().max()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=20000)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--strategy", default="hybrid", choices=["hybrid", "oversample", "undersample"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "balance.json"))
    a = ap.parse_args()

    df = corpus(a.rows, a.seed)
    gcounts: dict[str, int] = {}
    for gs in df["groups"]:
        for g in gs:
            gcounts[g] = gcounts.get(g, 0) + 1
    counts = balance.cell_counts(df, intersectional=False, group_counts=gcounts)
    plan = resample.resample_plan(
        counts,
        resample.target_counts(counts, strategy=a.strategy),
        seed=a.seed,
        intersectional=False,
        group_counts=gcounts,
    )
    parts, one = batches(df, a.batches), [df]
    cells = balance.cell_keys(df, intersectional=False, group_counts=gcounts)
    before = score(df, plan)
    rows = []

    def run(name: str, fn, same) -> None:
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        rows.append(
            {"method": name, **score(out, plan), "batch_invariant": same(out), "seconds": round(dt, 3)}
        )

    def ids(x: pd.DataFrame) -> list[str]:
        return sorted(x["id"].astype(str))

    ref = ours(one, plan)
    run(f"ours ({a.batches} batches)", lambda: ours(parts, plan), lambda o: ids(o) == ids(ref))
    run("plain collect + sample", lambda: collect_sample(df, plan, cells, a.seed), lambda o: None)
    run(
        "plain Bernoulli per row",
        lambda: bernoulli(parts, plan, a.seed),
        lambda o: ids(o) == ids(bernoulli(one, plan, a.seed)),
    )

    print(
        f"{len(df):,} rows (demo corpus, cleaned, deduplicated), {len(plan.cells)} non-empty cells, "
        f"{len(plan.unreachable)} unreachable, strategy={a.strategy}, target total {sum(p.target for p in plan.cells.values()):,}; before: "
        f"max label-rate gap {before['max_label_rate_gap']:.3f}"
    )
    hdr = f"{'method':28s} {'rows':>7s} {'max|dev|':>9s} {'sum|dev|':>9s} {'rate gap':>9s} {'1=K batches':>12s} {'s':>7s}"
    print(hdr)
    for r in rows:
        inv = {True: "yes", False: "no", None: "n/a"}[r["batch_invariant"]]
        print(
            f"{r['method']:28s} {r['rows']:7,d} {r['max_abs_dev']:9d} {r['sum_abs_dev']:9d} "
            f"{r['max_label_rate_gap']:9.3f} {inv:>12s} {r['seconds']:7.2f}"
        )
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(
        json.dumps(
            {"args": vars(a), "n_rows": len(df), "cells": len(plan.cells), "before": before, "results": rows},
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
