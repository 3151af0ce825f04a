"""(group, label) cells and Kamiran-Calders reweighing of them.

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

Resampling to the same independence, exact and distributable: :mod:`debias.corpus.resample`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from debias.io import arrow_string_lists
from debias.schema import NO_GROUP

NONE_KEY = NO_GROUP
Cell = tuple[str, int]  # (group key, label)


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


def class_labels(df: pd.DataFrame, label_col: str) -> np.ndarray:
    """``label_col`` as int64 class ids (0..K-1; 0/1 when binary); a ValueError naming the column
    and bad values otherwise."""
    if label_col not in df.columns:
        raise ValueError(
            f"missing label column {label_col!r}; columns present: {', '.join(map(str, df.columns))}"
        )
    y = pd.to_numeric(df[label_col], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~(np.isfinite(y) & (y >= 0) & (np.floor(y) == y))
    if bad.any():
        found = df[label_col][bad].head(5).tolist()
        raise ValueError(f"label column {label_col!r} must hold class ids 0, 1, ...; found e.g. {found}")
    return y.astype(np.int64)


binary_labels = class_labels  # the name of the binary-only days; K classes read the same way


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
    y = class_labels(df, label_col)
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
    bad = sorted({y for _, y in out if y < 0})
    if bad:
        raise ValueError(f"cell counts labels must be class ids 0, 1, ...; found {bad}")
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
    y = class_labels(df, label_col)
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


def _per_row(keys: np.ndarray, y: np.ndarray, table: Mapping[Cell, float], missing: float) -> np.ndarray:
    """``table[(key, label)]`` for every row, vectorised over the distinct keys; ``missing`` where
    the table has no entry."""
    if len(keys) == 0:
        return np.zeros(0, dtype=np.float64)
    codes, uniq = pd.factorize(pd.Series(keys, dtype=object))
    n_labels = max(2, int(y.max()) + 1, 1 + max((lab for _, lab in table), default=1))
    lut = np.full((len(uniq), n_labels), missing, dtype=np.float64)
    for i, g in enumerate(uniq):
        for lab in range(n_labels):
            v = table.get((g, lab))
            if v is not None:
                lut[i, lab] = v
    return lut[codes, y]
