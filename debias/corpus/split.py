"""Train/val/test assignment as a per-row function of (key, seed).

A row's split depends only on its key and the seed, through a stable 64-bit hash
(BLAKE2b, keyed by the seed), so it is the same on any partitioning, any number of
workers and any machine. Counterfactual pairs share a key (``pair_id``), so a pair never
straddles two splits.

Stratification. With one independent uniform draw per key, every (group, label) cell is
split in the target proportions *in expectation*: the number of rows of a cell of size n
that land in ``train`` is Binomial(n, f_train), so its share deviates from ``f_train`` by
about ``sqrt(f (1 - f) / n)`` (about 1.3 points for n = 1000, f = 0.8). That is usually
enough. Where it is not, :func:`stratified_cutpoints` gives an *exact* scheme that stays a
per-row function: given the sorted hash values of one cell (or the histogram/boundary
passes of :mod:`debias.corpus.balance` on a distributed corpus) it returns per-cell cut points
so that the ``round(f * n)`` rows with the smallest hash values of each cell go to train,
the next ones to val, and so on; :func:`assign_split` then applies them row by row.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")

# 53 bits: the mantissa of a float64, so every value is exactly representable and < 1.
_MANTISSA_BITS = 53


def stable_uniform(keys: Iterable[object], *, seed: int, salt: str = "") -> np.ndarray:
    """Map each key to a float in [0, 1) that depends only on (key, seed, salt).

    BLAKE2b with an 8-byte digest, keyed by ``f"{salt}:{seed}"``; the top 53 bits of the
    digest are scaled to [0, 1). Keys are hashed through ``str(key)``. Different ``salt``
    values give independent draws for the same key (the split and the resampling stage
    must not reuse each other's draws, or rows sent to train would also be the rows that
    get copied).

    Parameters
    ----------
    keys : iterable of str (or anything whose ``str`` is stable)
    seed : int
    salt : str, optional
        Names the purpose of the draw.

    Returns
    -------
    numpy.ndarray of float64, one value per key.
    """
    hkey = f"{salt}:{int(seed)}".encode()
    if len(hkey) > 64:
        raise ValueError(f"salt too long for a BLAKE2b key (max 64 bytes with the seed); found {len(hkey)}")
    digests = b"".join(
        hashlib.blake2b(str(k).encode("utf-8"), digest_size=8, key=hkey).digest() for k in keys
    )
    if not digests:
        return np.zeros(0, dtype=np.float64)
    as_int = np.frombuffer(digests, dtype=">u8").astype(np.uint64)
    return (as_int >> np.uint64(64 - _MANTISSA_BITS)).astype(np.float64) * 2.0**-_MANTISSA_BITS


def _check_fractions(fractions: Mapping[str, float]) -> list[tuple[str, float]]:
    if not isinstance(fractions, Mapping) or not fractions:
        raise TypeError(f"fractions must be a non-empty dict split name -> fraction; found {fractions!r}")
    unknown = [k for k in fractions if k not in SPLIT_NAMES]
    if unknown:
        raise ValueError(f"split names must be among {SPLIT_NAMES}; found {unknown}")
    items = [(name, float(fractions[name])) for name in SPLIT_NAMES if name in fractions]
    bad = {k: v for k, v in items if not (0.0 <= v <= 1.0)}
    if bad:
        raise ValueError(f"split fractions must lie in [0, 1]; found {bad}")
    total = sum(v for _, v in items)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"split fractions must sum to 1.0; found {total:.6f} from {dict(items)}")
    return items


def _null_keys(keys: pd.Series) -> np.ndarray:
    return keys.isna().to_numpy()


def assign_split(
    df: pd.DataFrame,
    *,
    fractions: Mapping[str, float],
    seed: int,
    key_col: str = "id",
    out_col: str = "split",
    cell_col: str | None = None,
    cutpoints: Mapping[object, Sequence[float]] | None = None,
) -> pd.DataFrame:
    """Add a ``split`` column (``train``/``val``/``test``) from a hash of ``key_col``.

    Parameters
    ----------
    df : pandas.DataFrame
        One batch; must hold ``key_col`` with no nulls (the caller fills ``pair_id`` with
        ``id`` where it is null).
    fractions : dict
        ``{"train": 0.8, "val": 0.1, "test": 0.1}``; names among train/val/test, summing
        to 1. Splits are laid out on [0, 1) in the order train, val, test.
    seed : int
    key_col : str
        Rows sharing a key always share a split.
    out_col : str
    cell_col, cutpoints : optional
        Exact stratification: ``cutpoints[cell]`` is the increasing list of boundaries
        between consecutive splits for the rows whose ``cell_col`` equals ``cell`` (from
        :func:`stratified_cutpoints`). Rows of a cell missing from ``cutpoints`` fall back
        to ``fractions``.

    Returns
    -------
    pandas.DataFrame
        A copy of ``df`` with ``out_col`` added.
    """
    items = _check_fractions(fractions)
    if key_col not in df.columns:
        raise ValueError(
            f"missing key column {key_col!r}; columns present: {', '.join(map(str, df.columns))}"
        )
    keys = df[key_col]
    if _null_keys(keys).any():
        raise ValueError(
            f"key column {key_col!r} has {int(_null_keys(keys).sum())} null values; fill them "
            "(e.g. pair_id with id) before assigning splits"
        )
    u = stable_uniform(keys.to_numpy(), seed=seed, salt="split")
    names = np.array([n for n, _ in items], dtype=object)
    default_edges = np.cumsum([f for _, f in items])[:-1]
    idx = np.searchsorted(default_edges, u, side="right")
    if cutpoints is not None:
        if cell_col is None or cell_col not in df.columns:
            raise ValueError(f"cutpoints need cell_col naming a column of df; found cell_col={cell_col!r}")
        cells = df[cell_col].to_numpy()
        for cell, edges in cutpoints.items():
            edges = np.asarray(edges, dtype=np.float64)
            if edges.shape != default_edges.shape:
                raise ValueError(
                    f"cutpoints[{cell!r}] must hold {len(default_edges)} boundaries; found {len(edges)}"
                )
            mask = cells == cell
            if mask.any():
                idx[mask] = np.searchsorted(edges, u[mask], side="right")
    out = df.copy()
    out[out_col] = names[idx] if len(df) else pd.Series([], dtype=object)
    return out


def stratified_cutpoints(
    u_sorted_by_cell: Mapping[object, Sequence[float]], *, fractions: Mapping[str, float]
) -> dict[object, list[float]]:
    """Per-cell cut points that split each cell *exactly* (to the rounding of one row).

    For a cell of n rows with sorted hash values u_(1) < ... < u_(n), the boundary after
    split j is placed just above the ``round(F_j * n)``-th value, F_j the cumulative
    fraction, so exactly that many rows fall below it. Works on keys, not rows: pass the
    hash values of distinct keys (``stable_uniform(keys, seed=seed, salt="split")``).

    Parameters
    ----------
    u_sorted_by_cell : dict cell -> hash values of that cell's keys (any order)
    fractions : dict as in :func:`assign_split`

    Returns
    -------
    dict cell -> list of boundaries for :func:`assign_split` ``cutpoints``.
    """
    items = _check_fractions(fractions)
    cum = np.cumsum([f for _, f in items])[:-1]
    out: dict[object, list[float]] = {}
    for cell, values in u_sorted_by_cell.items():
        v = np.sort(np.asarray(values, dtype=np.float64))
        n = len(v)
        edges = []
        for c in cum:
            k = int(np.floor(c * n + 0.5))  # rows below the boundary
            # Boundary strictly above the k-th value and at or below the (k+1)-th, so that
            # searchsorted(side="right") puts exactly k values before it.
            if k <= 0:
                edges.append(0.0)
            elif k >= n:
                edges.append(1.0)
            else:
                edges.append(float(v[k]))
        out[cell] = edges
    return out
