"""Reweighing and exact, distributable resampling of (group, label) cells.

Kamiran, F. & Calders, T. (2012), "Data preprocessing techniques for classification without
discrimination", Knowledge and Information Systems 33(1): reweighing (section 4.2) gives each
row of cell (g, y) the weight P(g) P(y) / P(g, y), making group and label independent in the
weighted data; preferential/uniform sampling (section 4.3) instead changes the number of rows
per cell to the counts expected under independence, n_g P(y).

Cells. A row's *group key* is ``"__none__"`` if it mentions no group, the group if exactly
one, and otherwise: with ``intersectional=True`` the sorted groups joined by ``+``
(``"black+female"``); with ``intersectional=False`` the rarest of its groups by corpus count
(``group_counts``), ties broken by name, so that a row about a small group counts towards that
group rather than towards a big one it also mentions (without ``group_counts``: the first
group by name). A cell is the pair (group key, label).

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
import pyarrow as pa
import pyarrow.compute as pc

from debias.corpus.split import stable_uniform
from debias.io import arrow_string_lists
from debias.schema import NO_GROUP

NONE_KEY = NO_GROUP
Cell = tuple[str, int]  # (group key, label)

_SALT = "resample"


# --------------------------------------------------------------------------- cells


def _as_groups(v: object) -> tuple[str, ...]:
    # Ray hands list columns over as numpy arrays, pandas as lists; nulls as None or NaN.
    if v is None:
        return ()
    if isinstance(v, float) and np.isnan(v):
        return ()
    if isinstance(v, str):
        raise TypeError(f"groups must be a list of group names per row; found the string {v!r}")
    if isinstance(v, np.ndarray):
        v = v.tolist()
    try:
        return tuple(str(g) for g in v)  # type: ignore[union-attr]
    except TypeError:
        raise TypeError(f"groups must be a list of group names per row; found {type(v).__name__}") from None


def _group_key(groups: tuple[str, ...], intersectional: bool, group_counts: Mapping[str, int] | None) -> str:
    uniq = sorted(set(groups))
    if not uniq:
        return NONE_KEY
    if len(uniq) == 1:
        return uniq[0]
    if intersectional:
        return "+".join(uniq)
    if group_counts is None:
        return uniq[0]
    # Rarest group; a group absent from the counts has count 0 (rarest of all).
    return min(uniq, key=lambda g: (group_counts.get(g, 0), g))


def cell_keys(
    df: pd.DataFrame,
    *,
    intersectional: bool,
    group_counts: Mapping[str, int] | None = None,
    groups_col: str = "groups",
) -> pd.Series:
    """Group key of every row (see the module docstring for the rule).

    Parameters
    ----------
    df : pandas.DataFrame with ``groups_col`` holding a list (or numpy array) of group names.
    intersectional : bool
    group_counts : dict group -> rows mentioning it in the whole corpus (e.g. from
        :func:`debias.corpus.audit.group_counts`); decides which group a multi-group row belongs to
        when ``intersectional`` is False.
    groups_col : str

    Returns
    -------
    pandas.Series of str aligned with ``df.index``.
    """
    if groups_col not in df.columns:
        raise ValueError(f"missing column {groups_col!r}; columns present: {', '.join(map(str, df.columns))}")
    col = df[groups_col]
    joined = _joined_groups(col)
    if joined is None:  # not a clean list<string> column: per-row path with precise errors
        cache: dict[tuple[str, ...], str] = {}
        keys = []
        for v in col.tolist():
            t = _as_groups(v)
            k = cache.get(t)
            if k is None:
                k = cache[t] = _group_key(t, intersectional, group_counts)
            keys.append(k)
        return pd.Series(keys, index=df.index, dtype=object, name="cell")
    # Vectorised: one key computation per distinct group list, not per row.
    codes, uniq = pd.factorize(joined, use_na_sentinel=True)
    lut = np.array(
        [_group_key(tuple(u.split(_SEP)) if u else (), intersectional, group_counts) for u in uniq]
        + [NONE_KEY],  # code -1: a null list
        dtype=object,
    )
    return pd.Series(lut[codes], index=df.index, dtype=object, name="cell")


_SEP = "\x1f"  # unit separator: cannot occur in a group name


def _joined_groups(col: pd.Series) -> pd.Series | None:
    """Each row's groups joined by ``_SEP`` (null for a null list), computed by Arrow; None when
    the column is not a clean list of strings (then the caller takes the per-row path)."""
    chunked = arrow_string_lists(col)
    if chunked is not None:  # already Arrow: no round trip through Python lists
        return pd.Series(pc.binary_join(chunked, _SEP).to_pandas().to_numpy(), index=col.index)
    values = col.tolist()
    # Arrow would read a bare string as a list of characters; leave those to the per-row path.
    if not values or any(isinstance(v, str) for v in values):
        return None
    try:
        arr = pa.array(values, type=pa.list_(pa.string()), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        return None
    return pc.binary_join(arr, _SEP).to_pandas()


def binary_labels(df: pd.DataFrame, label_col: str) -> np.ndarray:
    """``label_col`` as int64 0/1; a ValueError naming the column and bad values otherwise."""
    if label_col not in df.columns:
        raise ValueError(
            f"missing label column {label_col!r}; columns present: {', '.join(map(str, df.columns))}"
        )
    y = pd.to_numeric(df[label_col], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        found = df[label_col][bad].head(5).tolist()
        raise ValueError(f"label column {label_col!r} must hold 0/1; found e.g. {found}")
    return y.astype(np.int64)


def _sum_frames(frames: Iterable[pd.DataFrame], by: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        return pd.DataFrame({**{c: pd.Series(dtype=object) for c in by}, "n": pd.Series(dtype=np.int64)})
    out = pd.concat(frames, ignore_index=True).groupby(by, as_index=False, sort=True)["n"].sum()
    out["n"] = out["n"].astype(np.int64)
    return out


def cell_counts(
    df: pd.DataFrame,
    *,
    intersectional: bool,
    group_counts: Mapping[str, int] | None = None,
    label_col: str = "label",
    groups_col: str = "groups",
) -> pd.DataFrame:
    """Rows per (cell, label) in one batch: columns ``cell``, ``label``, ``n`` (mergeable)."""
    keys = cell_keys(df, intersectional=intersectional, group_counts=group_counts, groups_col=groups_col)
    y = binary_labels(df, label_col)
    frame = pd.DataFrame({"cell": keys.to_numpy(), "label": y, "n": 1})
    return _sum_frames([frame], ["cell", "label"])


def merge_cell_counts(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Sum per-batch :func:`cell_counts` frames."""
    return _sum_frames(frames, ["cell", "label"])


def _counts_dict(counts: pd.DataFrame) -> dict[Cell, int]:
    missing = {"cell", "label", "n"} - set(counts.columns)
    if missing:
        raise ValueError(f"cell counts need columns cell, label, n; missing {sorted(missing)}")
    merged = merge_cell_counts([counts[["cell", "label", "n"]]])
    out = {(str(c), int(y)): int(n) for c, y, n in merged.itertuples(index=False)}
    bad = sorted({y for _, y in out} - {0, 1})
    if bad:
        raise ValueError(f"cell counts labels must be 0/1; found {bad}")
    return out


# --------------------------------------------------------------------------- weights


def compute_weights(
    cell_counts: pd.DataFrame, *, method: Literal["kamiran_calders", "inverse_frequency"] = "kamiran_calders"
) -> dict[Cell, float]:
    """Weight per (cell, label), normalised so that sum(w * n) = N (mean weight 1).

    ``kamiran_calders``: w(g, y) = P(g) P(y) / P(g, y) = n_g n_y / (N n_gy) (Kamiran & Calders
    2012, section 4.2). ``inverse_frequency``: w = N / (K n_gy), K the number of non-empty
    cells, so every cell carries the same total weight.

    Parameters
    ----------
    cell_counts : DataFrame with columns ``cell``, ``label``, ``n``.
    method : str

    Returns
    -------
    dict (cell, label) -> weight, for every non-empty cell.
    """
    counts = {k: n for k, n in _counts_dict(cell_counts).items() if n > 0}
    if not counts:
        raise ValueError("cell counts are empty: no rows to weight")
    total = sum(counts.values())
    if method == "kamiran_calders":
        n_g: dict[str, int] = {}
        n_y: dict[int, int] = {}
        for (g, y), n in counts.items():
            n_g[g] = n_g.get(g, 0) + n
            n_y[y] = n_y.get(y, 0) + n
        raw = {(g, y): n_g[g] * n_y[y] / (total * n) for (g, y), n in counts.items()}
    elif method == "inverse_frequency":
        k = len(counts)
        raw = {c: total / (k * n) for c, n in counts.items()}
    else:
        raise ValueError(f"method must be 'kamiran_calders' or 'inverse_frequency'; found {method!r}")
    # Both formulas already give sum(w n) = N when every cell is non-empty; KC does not when
    # some (g, y) cell is empty, so normalise explicitly.
    scale = total / sum(raw[c] * counts[c] for c in counts)
    return {c: float(w * scale) for c, w in raw.items()}


def apply_weights(
    df: pd.DataFrame,
    *,
    weights: Mapping[Cell, float],
    intersectional: bool,
    group_counts: Mapping[str, int] | None = None,
    label_col: str = "label",
    groups_col: str = "groups",
    out_col: str = "sample_weight",
) -> pd.DataFrame:
    """Add ``sample_weight`` = the weight of each row's (cell, label).

    Raises ValueError for a row whose cell has no weight (the weights were computed on
    other data, or with other cell settings).
    """
    keys = cell_keys(df, intersectional=intersectional, group_counts=group_counts, groups_col=groups_col)
    y = binary_labels(df, label_col)
    w = _per_row(keys.to_numpy(), y, weights, np.nan)
    if np.isnan(w).any():
        i = int(np.flatnonzero(np.isnan(w))[0])
        raise ValueError(
            f"no weight for cell ({keys.iloc[i]!r}, {y[i]}); weights hold {len(weights)} cells, e.g. "
            f"{sorted(weights)[:5]}; were they computed with the same intersectional/group_counts?"
        )
    out = df.copy()
    out[out_col] = w
    return out


# --------------------------------------------------------------------------- resampling


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
    dict (cell, label) -> target, for every group key in the counts and both labels. A cell
    with no rows but a positive target cannot be reached; :func:`resample_plan` lists it.
    """
    counts = _counts_dict(cell_counts)
    total = sum(counts.values())
    if total == 0:
        raise ValueError("cell counts are empty: nothing to resample")
    n_g: dict[str, int] = {}
    n_y = {0: 0, 1: 0}
    for (g, y), n in counts.items():
        n_g[g] = n_g.get(g, 0) + n
        n_y[y] += n
    p_y = {y: n_y[y] / total for y in (0, 1)}
    shape = {(g, y): n_g[g] * p_y[y] for g in sorted(n_g) for y in (0, 1)}
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
    y = binary_labels(df, plan.label_col)
    if plan.id_col not in df.columns:
        raise ValueError(
            f"missing id column {plan.id_col!r}; columns present: {', '.join(map(str, df.columns))}"
        )
    u = stable_uniform(df[plan.id_col].to_numpy(), seed=plan.seed, salt=_SALT)
    return keys, y, u


def _per_row(keys: np.ndarray, y: np.ndarray, table: Mapping[Cell, float], missing: float) -> np.ndarray:
    """``table[(key, label)]`` for every row, vectorised over the distinct keys; ``missing`` where
    the table has no entry."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.float64)
    codes, uniq = pd.factorize(pd.Series(keys, dtype=object))
    lut = np.full((len(uniq), 2), missing, dtype=np.float64)
    for i, g in enumerate(uniq):
        for lab in (0, 1):
            v = table.get((g, lab))
            if v is not None:
                lut[i, lab] = v
    return lut[codes, y]


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
