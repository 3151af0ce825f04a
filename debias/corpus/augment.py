"""Counterfactual augmentation of a corpus batch: for the rows that mention a swappable identity
term, the same text about another group (Lu et al. 2019; swap lists and the rewrite itself are
:mod:`debias.identity.swaps`).

Generated rows keep their source's split, label and weight, get ``<id>~cf`` ids and a shared
``pair_id`` (append / pairs), or replace their source's text in place (replace), and are
re-annotated so their ``groups`` and ``g_<group>`` flags describe the rewritten text. Every
random choice (the group permutation of a row, the replace draw) is a hash of (seed, row id),
so the output does not depend on how the corpus is split into batches.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Literal

import numpy as np
import pandas as pd

from debias.identity.annotate import groups_series
from debias.identity.lexicon import Lexicon
from debias.identity.swaps import SwapTable, annotator_of, rewrite
from debias.schema import group_name, is_group_column

__all__ = ["counterfactual_batch", "row_mapping"]


def _u64(*parts: Any) -> int:
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode("utf-8"), digest_size=8)
    return int.from_bytes(h.digest(), "big")


def row_mapping(table: SwapTable, row_id: str, seed: int) -> dict[str, str]:
    """The group permutation used for one row: male <-> female; other axes a random cycle.

    Deterministic in ``(row_id, seed)``: a cyclic shift of a seeded shuffle of the axis's
    groups, so no group maps to itself.
    """
    mapping: dict[str, str] = {}
    for axis, groups in table.groups.items():
        order = list(groups)
        if len(order) > 2:
            random.Random(_u64("perm", seed, row_id, axis)).shuffle(order)
        for i, g in enumerate(order):
            mapping[g] = order[(i + 1) % len(order)]
    return mapping


def counterfactual_batch(df: pd.DataFrame, *, table: SwapTable, lexicon: Lexicon | None,
                         mode: Literal["none", "append", "replace", "pairs"], probability: float = 0.5,
                         seed: int = 0, text_col: str = "text", id_col: str = "id",
                         reannotate: bool = True, pair_col: str | None = None) -> pd.DataFrame:
    """Counterfactual augmentation of one batch (row schema of docs/ARCHITECTURE.md).

    Parameters
    ----------
    df : the batch; needs ``text_col`` and ``id_col``. Rows with ``is_augmented`` True are
        never used as sources.
    table : swap lists; each row's text is rewritten with ``row_mapping(table, id, seed)``.
    lexicon : used to recompute ``groups`` and ``g_<group>`` of rewritten rows when ``df`` has a
        ``groups`` column and ``reannotate`` is True (None: leave them as copied).
    mode : ``append`` originals plus one ``<id>~cf`` row per source whose text changed, with
        ``pair_id`` = source id on both; ``replace`` the text rewritten in place (same id) with
        probability ``probability`` per row, decided by hash(id, seed); ``pairs`` only the
        sources that have a counterfactual plus their counterfactuals; ``none`` unchanged.
    probability : replace mode only.
    seed : makes the permutation and the replace draw reproducible.
    reannotate : recompute ``groups``/``g_*`` on rewritten rows (needs ``lexicon``).
    pair_col : text pairs: the second text's column (``text_pair``), rewritten with the same
        group mapping as the first, so both texts speak of the same swapped group; a row is a
        source when either text changes. None: the column is copied as it is.

    Returns
    -------
    pandas.DataFrame
        With ``is_augmented`` (bool) and ``pair_id`` (string, null for unpaired rows) added if
        missing. Other columns of generated rows are copied from their source.
    """
    if mode not in ("none", "append", "replace", "pairs"):
        raise ValueError(f"mode must be one of none, append, replace, pairs; found {mode!r}")
    if not 0.0 <= probability <= 1.0:
        raise ValueError(f"probability must be in [0, 1]; found {probability}")
    roles = (("text_col", text_col), ("id_col", id_col), *((("pair_col", pair_col),) if pair_col else ()))
    for role, col in roles:
        if col not in df.columns:
            raise ValueError(f"missing {role} column {col!r}; columns present: {', '.join(map(str, df.columns))}")
    out = df.copy()
    if "is_augmented" not in out:
        out["is_augmented"] = False
    out["is_augmented"] = out["is_augmented"].fillna(False).astype(bool)
    if "pair_id" not in out:
        out["pair_id"] = pd.Series([None] * len(out), index=out.index, dtype="string")
    else:
        out["pair_id"] = out["pair_id"].astype("string")
    if mode == "none" or len(out) == 0:
        return out.iloc[0:0] if mode == "pairs" else out

    ids = out[id_col].astype(str).tolist()
    eligible = ~out["is_augmented"].to_numpy()
    # With only two-group axes (gender) the mapping is the same for every row: draw it once.
    fixed = row_mapping(table, "", seed) if all(len(g) <= 2 for g in table.groups.values()) else None
    cols = [text_col, *([pair_col] if pair_col else [])]
    rewritten = {c: _rewrite_column(out[c].tolist(), ids, eligible, table, fixed, seed) for c in cols}
    changed = np.zeros(len(out), dtype=bool)
    for new_texts in rewritten.values():
        changed |= np.array([x is not None for x in new_texts], dtype=bool)
    # A row whose other text changed keeps this one as it was.
    filled = {c: [n if n is not None else o for n, o in zip(rewritten[c], out[c].tolist(), strict=True)]
              for c in cols}

    if mode == "replace":
        draw = np.array([_u64("replace", seed, rid) / 2.0**64 < probability for rid in ids], dtype=bool)
        pick = changed & draw
        if pick.any():
            for c in cols:
                col = out[c].astype(object).to_numpy().copy()
                col[pick] = [filled[c][i] for i in np.flatnonzero(pick)]
                out[c] = pd.Series(col, index=out.index).astype(df[c].dtype)
            out.loc[pick, "is_augmented"] = True
            out = _reannotate(out, pick, lexicon, text_col, pair_col) if reannotate else out
        return out

    src_idx = np.flatnonzero(changed)
    out.loc[out.index[src_idx], "pair_id"] = [ids[i] for i in src_idx]
    gen = out.iloc[src_idx].copy()
    gen[id_col] = [f"{ids[i]}~cf" for i in src_idx]
    for c in cols:
        gen[c] = pd.Series([filled[c][i] for i in src_idx], index=gen.index).astype(df[c].dtype)
    gen["is_augmented"] = True
    if reannotate:
        gen = _reannotate(gen, np.ones(len(gen), dtype=bool), lexicon, text_col, pair_col)
    base = out if mode == "append" else out.iloc[src_idx]
    return pd.concat([base, gen], ignore_index=True)


def _rewrite_column(texts: list[Any], ids: list[str], eligible: np.ndarray, table: SwapTable,
                    fixed: dict[str, str] | None, seed: int) -> list[str | None]:
    """Each text rewritten with its row's mapping, or None where it is not a source or did not
    change (the mapping depends on the row id only, so both texts of a pair get the same one)."""
    maybe = _may_match(texts, table)
    new_texts: list[str | None] = []
    for i, (rid, t) in enumerate(zip(ids, texts, strict=True)):
        if not eligible[i] or not maybe[i] or not isinstance(t, str) or table.pattern.search(t) is None:
            new_texts.append(None)
            continue
        cf = rewrite(t, table, fixed or row_mapping(table, rid, seed))
        new_texts.append(cf if cf != t else None)
    return new_texts


def _may_match(texts: list[Any], table: SwapTable) -> np.ndarray:
    """True for each text that may contain a swap term (RE2 over the whole batch in Arrow; a
    superset of what ``table.pattern`` finds, so only these run the exact Python regex)."""
    if table.prefilter is None or len(texts) < 64:
        return np.ones(len(texts), dtype=bool)
    import pyarrow as pa
    import pyarrow.compute as pc

    arr = pa.array([t if isinstance(t, str) else None for t in texts], type=pa.string())
    hit = pc.match_substring_regex(pc.utf8_lower(arr), table.prefilter)
    return np.asarray(pc.fill_null(hit, False).to_numpy(zero_copy_only=False), dtype=bool)


def _reannotate(df: pd.DataFrame, mask: np.ndarray, lexicon: Lexicon | None, text_col: str,
                pair_col: str | None = None) -> pd.DataFrame:
    if lexicon is None or "groups" not in df.columns or not mask.any():
        return df
    ann = annotator_of(lexicon)
    found = ann.detect_groups(df.loc[mask, text_col].tolist())
    df = df.copy()
    if pair_col:
        second = ann.detect_groups(df.loc[mask, pair_col].tolist())
        for col, side in (("groups_text", found), ("groups_pair", second)):
            if col in df.columns:
                merged = [list(g) if g is not None else [] for g in df[col].tolist()]
                for pos, gs in zip(np.flatnonzero(mask), side, strict=True):
                    merged[pos] = gs
                df[col] = groups_series(merged, df.index)
        found = [sorted(set(a) | set(b)) for a, b in zip(found, second, strict=True)]
    merged = [list(g) if g is not None else [] for g in df["groups"].tolist()]
    for pos, gs in zip(np.flatnonzero(mask), found, strict=True):
        merged[pos] = gs
    df["groups"] = groups_series(merged, df.index)
    # Every g_<group> flag of a rewritten row follows its new groups, the given identity
    # columns' groups too (the source's flag no longer describes the rewritten text), so the
    # flags stay a function of `groups` (debias.identity.annotate.membership_flags).
    cols = [(group_name(c), c) for c in df.columns if is_group_column(c)]
    if cols:  # all flag columns in one assignment (a .loc per column is slow on wide frames)
        sets = [set(gs) for gs in found]
        flags = np.array([[g in s for g, _ in cols] for s in sets], dtype=bool).reshape(len(sets), len(cols))
        pos = np.flatnonzero(mask)
        for j, (_, col) in enumerate(cols):
            values = df[col].to_numpy(dtype=bool, copy=True)
            values[pos] = flags[:, j]
            df[col] = values
    return df
