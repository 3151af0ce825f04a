"""Exact, distributable resampling of (group, label) cells to the counts expected under
independence (Kamiran & Calders 2012, section 4.3; cells as in :mod:`debias.corpus.balance`).

Resampling without collecting the corpus, exact to one row per cell:

1. ``cell_counts`` over all batches, summed with ``merge_cell_counts``;
2. ``target_counts`` -> integer target T per cell; ``resample_plan`` -> per cell
   ``base = T // n`` copies of every row plus one ``extra`` copy for ``T - base * n`` rows;
3. every row draws ``u = stable_uniform(id, seed)``; the extra copies go to the rows with the
   ``extra`` smallest ``u`` of their cell. The threshold is found with a mergeable histogram of
   ``u`` per cell (``u_histogram``), then the values of the few rows in each cell's boundary
   bin (``boundary_values``), then ``thresholds``;
4. ``apply_resample`` repeats each row ``base + (u < u*)`` times, a pure row-wise function.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from debias.corpus.balance import (  # the cell helpers weights and resampling share
    Cell,
    _counts_dict,
    _per_row,
    _sum_frames,
    cell_counts,
    cell_keys,
    class_labels,
)
from debias.corpus.split import stable_uniform

__all__ = ["CellPlan", "ResamplePlan", "apply_resample", "boundary_bins", "boundary_values", "merge_u_histograms",
           "resample_frame", "resample_plan", "target_counts", "thresholds", "u_histogram"]

_SALT = "resample"


def target_counts(
    cell_counts: pd.DataFrame, *, strategy: Literal["oversample", "undersample", "hybrid"]
) -> dict[Cell, int]:
    """Integer target rows per (cell, label): each group keeps its size ratio, every group gets
    the overall label rate (Kamiran & Calders 2012, section 4.3).

    The shape is T(g, y) proportional to n_g P(y). ``hybrid``: T = round(n_g P(y)) (total
    about N; over-represented cells shrink, under-represented ones grow). ``oversample``: the
    shape scaled by s = max over non-empty cells of n_gy / (n_g P(y)), rounded up, so no cell
    shrinks. ``undersample``: scaled by the min of that ratio, rounded down, so no cell grows.

    Returns
    -------
    dict (cell, label) -> target, for every group key in the counts and every label (both when binary). A cell
    with no rows but a positive target cannot be reached; :func:`resample_plan` lists it.
    """
    counts = _counts_dict(cell_counts)
    total = sum(counts.values())
    if total == 0:
        raise ValueError("cell counts are empty: nothing to resample")
    n_g: dict[str, int] = {}
    classes = sorted({0, 1} | {y for _, y in counts})  # binary: both labels, as always; K: every class seen
    n_y = dict.fromkeys(classes, 0)
    for (g, y), n in counts.items():
        n_g[g] = n_g.get(g, 0) + n
        n_y[y] += n
    p_y = {y: n_y[y] / total for y in classes}
    shape = {(g, y): n_g[g] * p_y[y] for g in sorted(n_g) for y in classes}
    ratios = [counts[c] / shape[c] for c in shape if counts.get(c, 0) > 0 and shape[c] > 0]
    # The 1e-9 guards keep exact products (e.g. 40.000000001) from rounding the wrong way.
    if strategy == "hybrid":
        return {c: int(np.floor(v + 0.5)) for c, v in shape.items()}
    if strategy == "oversample":
        s = max(ratios)
        return {
            c: max(int(np.ceil(s * v - 1e-9)), counts.get(c, 0) if v > 0 else 0) for c, v in shape.items()
        }
    if strategy == "undersample":
        s = min(ratios)
        return {c: min(int(np.floor(s * v + 1e-9)), counts.get(c, 0)) for c, v in shape.items()}
    raise ValueError(f"strategy must be 'oversample', 'undersample' or 'hybrid'; found {strategy!r}")


@dataclass(frozen=True)
class CellPlan:
    n: int
    target: int
    base: int
    extra: int


@dataclass(frozen=True)
class ResamplePlan:
    """Everything a worker needs to compute a row's cell, its ``u`` and its number of copies."""

    seed: int
    intersectional: bool
    group_counts: dict[str, int] | None
    cells: dict[Cell, CellPlan]
    unreachable: list[Cell] = field(default_factory=list)
    bins: int = 65536
    label_col: str = "label"
    id_col: str = "id"
    groups_col: str = "groups"

    def to_dict(self) -> dict:
        """JSON-serialisable summary (for a manifest)."""
        return {
            "seed": self.seed,
            "intersectional": self.intersectional,
            "bins": self.bins,
            "cells": [
                {"cell": g, "label": y, "n": p.n, "target": p.target, "base": p.base, "extra": p.extra}
                for (g, y), p in sorted(self.cells.items())
            ],
            "unreachable": [{"cell": g, "label": y} for g, y in self.unreachable],
        }


def resample_plan(
    cell_counts: pd.DataFrame,
    targets: Mapping[Cell, int],
    *,
    seed: int,
    intersectional: bool,
    group_counts: Mapping[str, int] | None = None,
    bins: int = 65536,
    label_col: str = "label",
    id_col: str = "id",
    groups_col: str = "groups",
) -> ResamplePlan:
    """Per cell: ``base = T // n`` copies of every row and ``extra = T - base n`` extra copies.

    ``intersectional`` and ``group_counts`` must be those the counts were made with. Cells
    with a positive target and no rows are listed in ``unreachable`` (nothing to copy).
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1; found {bins}")
    counts = _counts_dict(cell_counts)
    cells: dict[Cell, CellPlan] = {}
    unreachable: list[Cell] = []
    for c in sorted(set(counts) | {(str(g), int(y)) for g, y in targets}):
        n = counts.get(c, 0)
        t = int(targets.get(c, n))
        if t < 0:
            raise ValueError(f"target for cell {c} must be >= 0; found {t}")
        if n == 0:
            if t > 0:
                unreachable.append(c)
            continue
        base, extra = divmod(t, n)
        cells[c] = CellPlan(n=n, target=t, base=base, extra=extra)
    return ResamplePlan(
        seed=int(seed),
        intersectional=bool(intersectional),
        group_counts=dict(group_counts) if group_counts is not None else None,
        cells=cells,
        unreachable=unreachable,
        bins=int(bins),
        label_col=label_col,
        id_col=id_col,
        groups_col=groups_col,
    )


def _check_plan(plan: object) -> ResamplePlan:
    if not isinstance(plan, ResamplePlan):
        raise TypeError(f"expected a ResamplePlan (from resample_plan); found {type(plan).__name__}")
    return plan


def _row_cells_u(df: pd.DataFrame, plan: ResamplePlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    _check_plan(plan)
    keys = cell_keys(
        df, intersectional=plan.intersectional, group_counts=plan.group_counts, groups_col=plan.groups_col
    ).to_numpy()
    y = class_labels(df, plan.label_col)
    if plan.id_col not in df.columns:
        raise ValueError(
            f"missing id column {plan.id_col!r}; columns present: {', '.join(map(str, df.columns))}"
        )
    u = stable_uniform(df[plan.id_col].to_numpy(), seed=plan.seed, salt=_SALT)
    return keys, y, u


def _check_bins(plan: ResamplePlan, bins: int | None) -> int:
    _check_plan(plan)
    if bins is not None and bins != plan.bins:
        raise ValueError(f"bins={bins} differs from the plan's bins={plan.bins}")
    return plan.bins


def u_histogram(df: pd.DataFrame, *, cells: ResamplePlan, bins: int | None = None) -> pd.DataFrame:
    """Pass 2: counts of ``u`` per (cell, label, bin) for the cells that need a threshold.

    ``cells`` is the :class:`ResamplePlan` (it defines each row's cell and the seed). Only
    non-empty bins are returned (columns ``cell``, ``label``, ``bin``, ``n``); merge batches
    with :func:`merge_u_histograms`.
    """
    plan = cells
    nb = _check_bins(plan, bins)
    keys, y, u = _row_cells_u(df, plan)
    need = {c: 1.0 for c, p in plan.cells.items() if p.extra > 0}
    mask = _per_row(keys, y, need, 0.0) == 1.0
    b = np.minimum((u * nb).astype(np.int64), nb - 1)
    frame = pd.DataFrame({"cell": keys[mask], "label": y[mask], "bin": b[mask], "n": 1})
    return _sum_frames([frame], ["cell", "label", "bin"])


def merge_u_histograms(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Sum per-batch :func:`u_histogram` frames."""
    return _sum_frames(frames, ["cell", "label", "bin"])


def _hist_by_cell(hist: pd.DataFrame) -> dict[Cell, tuple[np.ndarray, np.ndarray]]:
    merged = merge_u_histograms([hist])
    out = {}
    for (g, y), sub in merged.groupby(["cell", "label"], sort=True):
        sub = sub.sort_values("bin")
        out[(str(g), int(y))] = (sub["bin"].to_numpy(np.int64), sub["n"].to_numpy(np.int64))
    return out


def boundary_bins(plan: ResamplePlan, hist: pd.DataFrame) -> dict[Cell, tuple[int, int]]:
    """Per cell needing extras: (bin holding the (extra+1)-th smallest u, rows in lower bins).

    The threshold u* is that (extra+1)-th smallest value: the rows strictly below it are
    exactly the ``extra`` smallest. ``extra < n`` always, so the value exists.
    """
    by_cell = _hist_by_cell(hist)
    out: dict[Cell, tuple[int, int]] = {}
    for c, p in plan.cells.items():
        if p.extra == 0:
            continue
        if c not in by_cell:
            raise ValueError(f"histogram has no rows for cell {c}, which the plan says holds {p.n} rows")
        bins_, n = by_cell[c]
        if int(n.sum()) != p.n:
            raise ValueError(
                f"histogram counts {int(n.sum())} rows in cell {c}; the plan counted {p.n} "
                "(the histogram must cover exactly the data the counts were made on)"
            )
        cum = np.cumsum(n)
        j = int(np.searchsorted(cum, p.extra + 1, side="left"))
        out[c] = (int(bins_[j]), int(cum[j - 1]) if j > 0 else 0)
    return out


def boundary_values(
    df: pd.DataFrame, *, cells: ResamplePlan, bin_index_per_cell: Mapping[Cell, int | tuple[int, int]]
) -> pd.DataFrame:
    """Pass 3: the ``u`` of rows lying in their cell's boundary bin (columns cell, label, u).

    ``bin_index_per_cell`` is :func:`boundary_bins`'s answer (or just cell -> bin). With
    65536 bins a cell of a million rows puts about 15 rows in a bin: the answer is tiny.
    """
    plan = cells
    want = {c: (b[0] if isinstance(b, tuple) else int(b)) for c, b in bin_index_per_cell.items()}
    keys, y, u = _row_cells_u(df, plan)
    b = np.minimum((u * plan.bins).astype(np.int64), plan.bins - 1)
    mask = _per_row(keys, y, {c: float(v) for c, v in want.items()}, -1.0) == b
    return pd.DataFrame({"cell": keys[mask], "label": y[mask], "u": u[mask]})


def thresholds(plan: ResamplePlan, hist: pd.DataFrame, boundary_values: pd.DataFrame) -> dict[Cell, float]:
    """u* per cell: a row gets its extra copy iff ``u < u*`` (0.0 where ``extra == 0``).

    ``boundary_values`` is the concatenation of every batch's :func:`boundary_values`.
    """
    out = {c: 0.0 for c in plan.cells}
    bvals = boundary_values
    for c, (b, below) in boundary_bins(plan, hist).items():
        sel = bvals[(bvals["cell"] == c[0]) & (bvals["label"] == c[1])]["u"].to_numpy(np.float64)
        v = np.sort(sel)
        k = plan.cells[c].extra + 1 - below  # rank of u* inside the boundary bin, 1-based
        if not 1 <= k <= len(v):
            raise ValueError(
                f"boundary values for cell {c} hold {len(v)} rows of bin {b}; need rank {k} "
                "(were they computed with the same plan and bins as the histogram?)"
            )
        out[c] = float(v[k - 1])
    return out


def apply_resample(
    df: pd.DataFrame,
    *,
    plan: ResamplePlan,
    thresholds: Mapping[Cell, float],
    seed: int | None = None,
) -> pd.DataFrame:
    """Pass 4: repeat each row ``base + (u < u*)`` times (0 times drops it).

    Copy 0 keeps its id and ``resampled_from`` = None; copy k >= 1 gets id ``<id>~r<k>`` and
    ``resampled_from`` = the source id. Pure and row-wise: the output does not depend on how
    the corpus is split into batches. ``seed``, if given, must equal the plan's seed.
    """
    if seed is not None and int(seed) != plan.seed:
        raise ValueError(f"seed={seed} differs from the plan's seed={plan.seed}")
    keys, y, u = _row_cells_u(df, plan)
    base = _per_row(keys, y, {c: float(p.base) for c, p in plan.cells.items()}, np.nan)
    if np.isnan(base).any():
        i = int(np.flatnonzero(np.isnan(base))[0])
        raise ValueError(
            f"row cell ({keys[i]!r}, {y[i]}) is not in the plan; was the plan made from counts of this "
            "data with the same intersectional/group_counts?"
        )
    thr = _per_row(keys, y, dict(thresholds), 0.0)
    copies = base.astype(np.int64) + (u < thr)
    pos = np.repeat(np.arange(len(df)), copies)
    out = df.iloc[pos].reset_index(drop=True)
    # Copy number of each output row within its source row: 0, 1, ..., copies - 1.
    starts = np.repeat(np.cumsum(copies) - copies, copies)
    k = np.arange(len(pos)) - starts
    src = df[plan.id_col].astype(str).to_numpy()[pos]
    ids = np.where(k == 0, src, np.char.add(np.char.add(src.astype(str), "~r"), k.astype(str)))
    out[plan.id_col] = ids.astype(object)
    out["resampled_from"] = np.where(k == 0, None, src).astype(object)
    return out


def resample_frame(
    df: pd.DataFrame,
    *,
    strategy: Literal["oversample", "undersample", "hybrid"],
    seed: int,
    intersectional: bool = False,
    group_counts: Mapping[str, int] | None = None,
    bins: int = 65536,
    label_col: str = "label",
    id_col: str = "id",
    groups_col: str = "groups",
) -> tuple[pd.DataFrame, ResamplePlan]:
    """All passes on one in-memory frame (tests, small corpora); same rows as the distributed
    path over any batching."""
    kw = dict(
        intersectional=intersectional, group_counts=group_counts, label_col=label_col, groups_col=groups_col
    )
    counts = cell_counts(df, **kw)
    plan = resample_plan(
        counts, target_counts(counts, strategy=strategy), seed=seed, bins=bins, id_col=id_col, **kw
    )
    hist = u_histogram(df, cells=plan)
    bvals = boundary_values(df, cells=plan, bin_index_per_cell=boundary_bins(plan, hist))
    return apply_resample(df, plan=plan, thresholds=thresholds(plan, hist, bvals)), plan
