"""Validation of a predictions frame and encoding of group membership.

Everything that looks at user columns lives here, so the rest of the package works on
plain numpy arrays: ``y_true``, ``y_pred`` (0/1 int8), ``y_score`` (float64 in [0, 1]),
``weight`` (float64) and, per row, the index of its membership *pattern* -- the set of
groups the row belongs to. Patterns are what makes overlapping groups exact: a row that
mentions two groups is one row in the pattern ``("a", "b")``, not two rows.

Three ways to give membership, chosen by what ``group_col`` names:

* a list column (``["a", "b"]``; ``[]`` = no identity term; null = unknown),
* one categorical column (one group per row; null = unknown),
* a sequence of boolean columns (column name = group; a null in any of them = unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

UNKNOWN = "unknown"
OVERALL = "overall"
INTERSECTION_SEP = " & "
_RESERVED = {UNKNOWN, OVERALL}
# Bit masks are accumulated with float64 bincount, exact below 2**53.
_MAX_BITMASK_GROUPS = 52


@dataclass(frozen=True)
class Encoded:
    """One batch as arrays. ``pattern`` is -1 for rows of unknown membership."""

    y_true: np.ndarray
    y_pred: np.ndarray
    y_score: np.ndarray | None
    weight: np.ndarray
    weighted: bool
    pattern: np.ndarray
    patterns: tuple[tuple[str, ...], ...]


def _require_columns(df: pd.DataFrame, cols: Sequence[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"missing column(s) {', '.join(repr(c) for c in missing)}; "
            f"columns present: {', '.join(map(str, df.columns))}"
        )


def _binary(values: pd.Series, name: str) -> np.ndarray:
    if values.isna().any():
        raise ValueError(f"column {name!r} has {int(values.isna().sum())} null value(s); expected 0/1")
    arr = values.to_numpy()
    if arr.dtype == bool:
        return arr.astype(np.int8)
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"column {name!r} must be 0/1 or boolean; found dtype {values.dtype}")
    bad = (arr != 0) & (arr != 1)
    if bad.any():
        raise ValueError(f"column {name!r} must hold only 0 and 1; found {np.unique(arr[bad])[:5].tolist()}")
    return arr.astype(np.int8)


def _check_name(name: str) -> str:
    if not isinstance(name, str):
        raise TypeError(f"group names must be strings; found {type(name).__name__} {name!r}")
    if name in _RESERVED:
        raise ValueError(f"group name {name!r} is reserved; rename the group")
    return name


def _patterns_from_masks(mask: np.ndarray, names: list[str]) -> tuple[np.ndarray, list]:
    """Map per-row bit masks (float64, exact ints) to pattern indices."""
    uniq, inverse = np.unique(mask, return_inverse=True)
    patterns = []
    for m in uniq.astype(np.int64):
        patterns.append(tuple(sorted(names[k] for k in range(len(names)) if (m >> k) & 1)))
    return inverse.astype(np.int64), patterns


def _encode_list_column(col: pd.Series) -> tuple[np.ndarray, list]:
    n = len(col)
    try:
        arr = pa.array(col.to_numpy(dtype=object) if col.dtype == object else col, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        raise TypeError(f"group column {col.name!r} must hold lists of strings: {e}") from None
    if pa.types.is_null(arr.type):  # all null or empty: nothing to infer the type from
        arr = pa.nulls(len(arr), type=pa.list_(pa.string()))
    if pa.types.is_large_list(arr.type):
        arr = arr.cast(pa.list_(arr.type.value_type))
    if not pa.types.is_list(arr.type):
        raise TypeError(f"group column {col.name!r} must be a list column; found {arr.type}")
    unknown = np.asarray(arr.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    flat = pc.list_flatten(arr)
    parent = np.asarray(pc.list_parent_indices(arr).to_numpy(zero_copy_only=False), dtype=np.int64)
    if flat.null_count:
        raise ValueError(f"group column {col.name!r} holds a null group name inside a list")
    codes, names = pd.factorize(np.asarray(flat.to_numpy(zero_copy_only=False), dtype=object), sort=True)
    names = [_check_name(x) for x in names]
    if len(names) <= _MAX_BITMASK_GROUPS:
        pair = np.unique(parent * max(len(names), 1) + codes)  # drop repeated names in a list
        rows, k = np.divmod(pair, max(len(names), 1))
        mask = np.bincount(rows, weights=np.ldexp(1.0, k), minlength=n)
        pattern, patterns = _patterns_from_masks(mask, names)
    else:  # many groups: slower but exact
        keys = [() for _ in range(n)]
        acc: dict[int, set] = {}
        for r, c in zip(parent.tolist(), codes.tolist(), strict=True):
            acc.setdefault(r, set()).add(names[c])
        for r, s in acc.items():
            keys[r] = tuple(sorted(s))
        pattern, uniq = pd.factorize(pd.Series(keys, dtype=object))
        patterns = list(uniq)
    pattern = np.where(unknown, -1, pattern)
    return pattern, patterns


def _encode_categorical(col: pd.Series) -> tuple[np.ndarray, list]:
    if isinstance(col.dtype, pd.CategoricalDtype):
        # the codes are already there: keep the categories that occur (as factorize would)
        raw = col.cat.codes.to_numpy()
        cats = col.cat.categories
        used = np.flatnonzero(np.bincount(raw.astype(np.int64) + 1, minlength=len(cats) + 1)[1:])
        order = used[np.argsort(np.asarray(cats[used].astype(str)), kind="stable")]
        remap = np.full(len(cats) + 1, -1, dtype=np.int64)
        remap[order] = np.arange(len(order))
        codes = remap[raw]  # raw -1 (null) -> remap[-1] = -1
        names = [_check_name(str(x)) for x in cats[order]]
        return codes, [(x,) for x in names]
    codes, names = pd.factorize(col, sort=True)
    names = [_check_name(str(x)) if not isinstance(x, str) else _check_name(x) for x in names]
    return codes.astype(np.int64), [(x,) for x in names]


def _encode_bool_columns(df: pd.DataFrame, cols: Sequence[str]) -> tuple[np.ndarray, list]:
    names = [_check_name(c) for c in cols]
    if len(names) > _MAX_BITMASK_GROUPS:
        raise ValueError(f"at most {_MAX_BITMASK_GROUPS} boolean group columns; found {len(names)}")
    unknown = np.zeros(len(df), dtype=bool)
    mask = np.zeros(len(df))
    for k, c in enumerate(cols):
        s = df[c]
        unknown |= s.isna().to_numpy()
        v = s.fillna(False).to_numpy()
        if v.dtype != bool and not np.isin(v, [0, 1]).all():
            raise ValueError(f"group column {c!r} must be boolean; found values outside 0/1/True/False")
        mask += np.ldexp(1.0, k) * v.astype(bool)
    pattern, patterns = _patterns_from_masks(mask, names)
    return np.where(unknown, -1, pattern), patterns


def encode(
    df: pd.DataFrame,
    *,
    group_col: str | Sequence[str] = "groups",
    threshold: float = 0.5,
    y_true_col: str = "y_true",
    y_pred_col: str = "y_pred",
    score_col: str = "y_score",
    weight_col: str = "sample_weight",
    require_score: bool = False,
) -> Encoded:
    """Validate ``df`` and encode it; see the module docstring for ``group_col``."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a pandas DataFrame; found {type(df).__name__}")
    group_cols = [group_col] if isinstance(group_col, str) else list(group_col)
    if not group_cols:
        raise ValueError("group_col is empty; name a list column, a categorical column or boolean columns")
    _require_columns(df, [y_true_col, *group_cols])
    y_true = _binary(df[y_true_col], y_true_col)
    y_score = None
    if score_col in df.columns:
        y_score = df[score_col].to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(y_score).any() or (y_score < 0).any() or (y_score > 1).any():
            raise ValueError(f"column {score_col!r} must hold probabilities in [0, 1] without nulls")
    elif require_score:
        _require_columns(df, [score_col])
    if y_pred_col in df.columns:
        y_pred = _binary(df[y_pred_col], y_pred_col)
    elif y_score is not None:
        y_pred = (y_score >= threshold).astype(np.int8)
    else:
        raise ValueError(f"need {y_pred_col!r} or {score_col!r}; columns present: {', '.join(map(str, df.columns))}")
    weighted = weight_col in df.columns
    if weighted:
        weight = df[weight_col].to_numpy(dtype=np.float64, na_value=np.nan)
        if np.isnan(weight).any() or (weight < 0).any():
            raise ValueError(f"column {weight_col!r} must hold non-negative weights without nulls")
    else:
        weight = np.ones(len(df))

    if len(group_cols) > 1:
        pattern, patterns = _encode_bool_columns(df, group_cols)
    else:
        col = df[group_cols[0]]
        if pd.api.types.is_bool_dtype(col.dtype) or (col.dtype == object and _all_bool(col)):
            pattern, patterns = _encode_bool_columns(df, group_cols)
        elif _is_list_column(col):
            pattern, patterns = _encode_list_column(col)
        else:
            pattern, patterns = _encode_categorical(col)
    return Encoded(y_true, y_pred, y_score, weight, weighted, pattern, tuple(patterns))


def _all_bool(col: pd.Series) -> bool:
    v = col.dropna()
    return len(v) > 0 and all(isinstance(x, (bool, np.bool_)) for x in v.head(100))


def _is_list_column(col: pd.Series) -> bool:
    if isinstance(col.dtype, pd.ArrowDtype):
        return pa.types.is_list(col.dtype.pyarrow_dtype) or pa.types.is_large_list(col.dtype.pyarrow_dtype)
    if col.dtype != object:
        return False
    v = col.dropna()
    return len(v) == 0 or isinstance(v.iloc[0], (list, tuple, np.ndarray))


def intersection_name(members: Sequence[str]) -> str:
    """Name of the intersection of ``members``: ``"a & b"`` (members sorted)."""
    return INTERSECTION_SEP.join(sorted(members))
