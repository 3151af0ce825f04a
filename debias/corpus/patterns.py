"""Membership-pattern counts: one small table from which both the audit and the balance cells
follow, so one pass over the corpus serves both.

A row's pattern is the sorted set of groups it mentions joined by ``+`` (``""`` for none).
Counts of rows per (split, pattern, label) are mergeable by summing ``n``, so they are computed
per batch (or per dedup partition, :func:`debias.corpus.dedup.dedup_counts`) and summed in the
driver; :func:`audit_from_patterns` and :func:`cells_from_patterns` then give exactly what
:func:`debias.corpus.audit.audit_counts` and :func:`debias.corpus.balance.cell_counts` give on
the rows themselves.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pac

from debias.corpus import audit, balance
from debias.io import arrow_string_lists

__all__ = ["audit_from_patterns", "cells_from_patterns", "merge_pattern_counts", "pattern_array",
           "pattern_counts", "pattern_strings"]


def pattern_array(lists: pa.Array) -> pa.Array:
    """Each row's membership pattern from an Arrow ``list<string>`` array: its sorted groups
    joined by ``+`` (``""`` for none or null). Joined in Arrow; only rows whose groups are out
    of order (none, from the annotator, which sorts them) are sorted in Python."""
    joined = pac.binary_join(lists, "+").fill_null("")
    flat = pac.list_flatten(lists)
    if len(flat) < 2:
        return joined.cast(pa.string())
    parents = pac.list_parent_indices(lists).to_numpy()
    down = pac.less(flat.slice(1), flat.slice(0, len(flat) - 1)).fill_null(False).to_numpy(zero_copy_only=False)
    unsorted = np.unique(parents[1:][(parents[1:] == parents[:-1]) & down])
    if len(unsorted) == 0:
        return joined.cast(pa.string())
    out = joined.to_numpy(zero_copy_only=False).astype(object)
    for i in unsorted:
        out[i] = "+".join(sorted(lists[int(i)].as_py()))
    return pa.array(out, type=pa.string())


def pattern_strings(groups: pd.Series) -> list[str]:
    """Each row's membership pattern: its sorted groups joined by ``+`` (``""`` for none).

    Arrow-backed list columns (what Ray Data hands over) go through :func:`pattern_array`.
    """
    chunked = arrow_string_lists(groups)
    if chunked is not None:
        lists = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
        return pattern_array(lists).to_numpy(zero_copy_only=False).tolist()
    return ["+".join(sorted(str(x) for x in g)) if g is not None else "" for g in groups]


def pattern_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Rows per (split, membership pattern, label) in one batch; mergeable by summing ``n``.

    A pattern is the sorted set of groups a row mentions joined by ``+`` (``""`` for none).
    Both the audit (per-group counts, overlapping) and the balance cells (one key per row,
    under any keying rule) are functions of these counts, so one pass over the corpus serves both.
    """
    pattern = pattern_strings(df["groups"])
    return (pd.DataFrame({"split": df["split"].astype(str).values, "pattern": pattern,
                          "label": df["label"].astype("int64").values})
            .groupby(["split", "pattern", "label"], as_index=False).size().rename(columns={"size": "n"}))


def merge_pattern_counts(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The sum of several :func:`pattern_counts` frames (empty ones skipped)."""
    cat = pd.concat([f for f in frames if len(f)], ignore_index=True)
    return cat.groupby(["split", "pattern", "label"], as_index=False)["n"].sum()


def audit_from_patterns(pc: pd.DataFrame, *, group_names: list[str], positive: int = 1) -> pd.DataFrame:
    """``debias.corpus.audit.audit_counts`` over the whole corpus, from pattern counts (class
    ``positive`` against every other class)."""
    wide = pc.groupby(["pattern", "label"])["n"].sum().unstack(fill_value=0)
    classes = sorted({0, 1, int(positive), *(int(c) for c in wide.columns)})
    wide = wide.reindex(columns=classes, fill_value=0)
    by = pd.DataFrame({1: wide[int(positive)], 0: wide.drop(columns=[int(positive)]).sum(axis=1)}, index=wide.index)
    patterns = [p.split("+") if p else [] for p in by.index]
    member = np.array([[g in set(p) for g in group_names] for p in patterns], dtype=bool).reshape(
        len(patterns), len(group_names))  # (patterns, groups)
    neg, pos = by[0].to_numpy(np.int64), by[1].to_numpy(np.int64)
    none = ~member.any(axis=1)
    return pd.DataFrame({
        "group": list(group_names) + [audit.NONE_GROUP, audit.ALL_GROUP],
        "n_neg": np.concatenate([member.T.astype(np.int64) @ neg, [neg[none].sum(), neg.sum()]]).astype(np.int64),
        "n_pos": np.concatenate([member.T.astype(np.int64) @ pos, [pos[none].sum(), pos.sum()]]).astype(np.int64),
    })


def cells_from_patterns(pc: pd.DataFrame, *, intersectional: bool,
                        group_counts: dict[str, int] | None) -> pd.DataFrame:
    """``debias.corpus.balance.cell_counts`` over the training rows, from pattern counts."""
    train = pc[pc["split"] == "train"].groupby(["pattern", "label"], as_index=False)["n"].sum()
    if train.empty:
        return pd.DataFrame({"cell": pd.Series(dtype=str), "label": pd.Series(dtype="int64"),
                             "n": pd.Series(dtype="int64")})
    frame = pd.DataFrame({"groups": [p.split("+") if p else [] for p in train["pattern"]]})
    cells = balance.cell_keys(frame, intersectional=intersectional, group_counts=group_counts)
    out = pd.DataFrame({"cell": cells.values, "label": train["label"].values, "n": train["n"].values})
    return out.groupby(["cell", "label"], as_index=False)["n"].sum()
