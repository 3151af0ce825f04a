"""Corpus audit: who is mentioned, how often, and with which label.

``audit_counts`` turns one batch into a small table of counts (mergeable by summing, so a
distributed job aggregates it without collecting rows); ``audit_report`` turns the merged
counts into per-group statistics; ``audit_table`` renders them as Markdown.

For a group g the 2x2 table is in-group / out-of-group by label:

              label 1   label 0
    in g         a         b
    not in g     c         d

and the association between membership and label is summarised by the log odds ratio
ln(ad / bc) with the Woolf standard error sqrt(1/a + 1/b + 1/c + 1/d) (Woolf 1955; with the
Haldane-Anscombe correction of adding 0.5 to every cell when one is 0: Haldane 1956), and by
Pearson's chi-square test of independence (``scipy.stats.chi2_contingency``, with Yates'
continuity correction as scipy applies by default to 2x2 tables).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from debias.corpus.balance import class_labels
from debias.schema import NO_GROUP, group_columns

NONE_GROUP = NO_GROUP
ALL_GROUP = "__all__"
_COLUMNS = ["group", "n_neg", "n_pos"]


def audit_counts(df: pd.DataFrame, *, group_names: Sequence[str], label_col: str = "label",
                 positive: int = 1) -> pd.DataFrame:
    """Rows per group and label in one batch.

    Parameters
    ----------
    df : pandas.DataFrame with a bool column ``g_<group>`` for every group in ``group_names``
        and a class-id ``label_col``.
    group_names : list of str
    label_col : str
    positive : the class counted as ``n_pos`` (default 1); every other class counts as ``n_neg``
        (a K-class corpus is audited for one class against the rest).

    Returns
    -------
    pandas.DataFrame with columns ``group``, ``n_neg`` (label 0), ``n_pos`` (label 1): one row
    per group in ``group_names`` order (a row in two groups counts in both), then ``__none__``
    (rows in no group) and ``__all__`` (every row). Zero rows are kept so that frames from
    different batches line up.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"audit_counts expects a pandas DataFrame; found {type(df).__name__}")
    names = list(group_names)
    cols = group_columns(names)
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ValueError(
            f"missing group columns {missing}; columns present: {', '.join(map(str, df.columns))}"
        )
    pos = class_labels(df, label_col) == int(positive)
    member = (
        df[cols].fillna(False).to_numpy(dtype=bool) if cols else np.zeros((len(df), 0), dtype=bool)
    )  # (rows, groups)
    n = member.sum(axis=0)
    n_pos = member[pos].sum(axis=0)
    none = ~member.any(axis=1)
    all_n, all_pos = len(df), int(pos.sum())
    out = pd.DataFrame(
        {
            "group": names + [NONE_GROUP, ALL_GROUP],
            "n_neg": np.concatenate([n - n_pos, [none.sum() - (none & pos).sum(), all_n - all_pos]]),
            "n_pos": np.concatenate([n_pos, [(none & pos).sum(), all_pos]]),
        }
    )
    out[["n_neg", "n_pos"]] = out[["n_neg", "n_pos"]].astype(np.int64)
    return out


def merge_counts(frames: Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Sum :func:`audit_counts` frames from several batches (group order of first appearance)."""
    frames = [f for f in frames if f is not None and len(f)]
    if not frames:
        raise ValueError("merge_counts got no count frames")
    for f in frames:
        if list(f.columns) != _COLUMNS:
            raise ValueError(f"count frames must have columns {_COLUMNS}; found {list(f.columns)}")
    cat = pd.concat(frames, ignore_index=True)
    order = list(dict.fromkeys(cat["group"]))
    out = cat.groupby("group", sort=False)[["n_neg", "n_pos"]].sum().reindex(order).reset_index()
    out[["n_neg", "n_pos"]] = out[["n_neg", "n_pos"]].astype(np.int64)
    return out


def group_counts(counts: pd.DataFrame) -> dict[str, int]:
    """Rows per group (without ``__none__``/``__all__``) from merged counts, for
    :func:`debias.corpus.balance.cell_keys`."""
    return {
        str(g): int(a + b)
        for g, a, b in counts[_COLUMNS].itertuples(index=False)
        if g not in (NONE_GROUP, ALL_GROUP)
    }


def log_odds_ratio(
    a: float, b: float, c: float, d: float, *, z: float = 1.959963984540054
) -> dict[str, float]:
    """Log odds ratio ln(ad / bc) of the 2x2 table [[a, b], [c, d]] with a Wald CI.

    Woolf's standard error sqrt(1/a + 1/b + 1/c + 1/d); 0.5 is added to every cell when any
    cell is 0 (Haldane-Anscombe). ``z`` = 1.96 gives the 95% interval.
    """
    cells = [float(a), float(b), float(c), float(d)]
    corrected = any(x == 0 for x in cells)
    if corrected:
        cells = [x + 0.5 for x in cells]
    a_, b_, c_, d_ = cells
    lor = math.log(a_ * d_ / (b_ * c_))
    se = math.sqrt(1 / a_ + 1 / b_ + 1 / c_ + 1 / d_)
    return {
        "log_odds_ratio": lor,
        "se": se,
        "ci_low": lor - z * se,
        "ci_high": lor + z * se,
        "haldane": corrected,
    }


def _chi2_p(table: np.ndarray) -> tuple[float | None, float | None]:
    """Pearson's chi-square test of independence on a 2x2 table with Yates' correction, as
    ``scipy.stats.chi2_contingency`` computes it (each |observed - expected| is reduced by
    0.5, but not below 0), in closed form: the p-value of a chi-square with one degree of
    freedom is ``erfc(sqrt(x / 2))``. (scipy.stats took 1.2 s to import, in the driver's path
    between de-duplication and the final pass; the tests keep scipy as the oracle.)"""
    # The test is undefined when an expected frequency is 0 (a whole row or column empty):
    # membership or label is then constant and independence cannot be tested.
    table = np.asarray(table, dtype=np.float64)
    if table.shape != (2, 2):
        raise ValueError(f"a 2x2 table is needed; found shape {table.shape}")
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    if (rows == 0).any() or (cols == 0).any():
        return None, None
    expected = np.outer(rows, cols) / table.sum()
    chi2 = float((np.maximum(np.abs(table - expected) - 0.5, 0.0) ** 2 / expected).sum())
    return chi2, math.erfc(math.sqrt(chi2 / 2.0))


def audit_report(counts: pd.DataFrame, *, min_group_size: int = 30) -> dict:
    """Per-group statistics from merged :func:`audit_counts`.

    Parameters
    ----------
    counts : pandas.DataFrame from :func:`merge_counts` (must include ``__all__``).
    min_group_size : int
        Groups with fewer rows are flagged ``small``: their statistics are noisy.

    Returns
    -------
    dict, JSON-serialisable: ``n``, ``n_pos``, ``base_rate``, ``min_group_size`` and
    ``groups``: {group: {n, n_pos, label_rate, share, log_odds_ratio, se, ci_low, ci_high,
    haldane, chi2, p_value, small}}; statistics that cannot be computed are None.
    """
    if list(counts.columns) != _COLUMNS:
        raise ValueError(f"counts must have columns {_COLUMNS}; found {list(counts.columns)}")
    by = {str(g): (int(n0), int(n1)) for g, n0, n1 in counts.itertuples(index=False)}
    if ALL_GROUP not in by:
        raise ValueError(f"counts need the {ALL_GROUP!r} row (from audit_counts)")
    all_neg, all_pos = by[ALL_GROUP]
    total = all_neg + all_pos
    groups = {}
    for g, (n0, n1) in by.items():
        if g == ALL_GROUP:
            continue
        n = n0 + n1
        out_pos, out_neg = all_pos - n1, all_neg - n0
        if out_pos < 0 or out_neg < 0:
            raise ValueError(
                f"group {g!r} counts ({n1} pos, {n0} neg) exceed {ALL_GROUP!r} ({all_pos}, {all_neg})"
            )
        table = np.array([[n1, n0], [out_pos, out_neg]], dtype=np.float64)
        chi2, p = _chi2_p(table)
        lor = log_odds_ratio(n1, n0, out_pos, out_neg) if n > 0 and n < total else None
        groups[g] = {
            "n": n,
            "n_pos": n1,
            "label_rate": n1 / n if n else None,
            "share": n / total if total else None,
            "log_odds_ratio": lor["log_odds_ratio"] if lor else None,
            "se": lor["se"] if lor else None,
            "ci_low": lor["ci_low"] if lor else None,
            "ci_high": lor["ci_high"] if lor else None,
            "haldane": lor["haldane"] if lor else None,
            "chi2": chi2,
            "p_value": p,
            "small": n < min_group_size,
        }
    return {
        "n": total,
        "n_pos": all_pos,
        "base_rate": all_pos / total if total else None,
        "min_group_size": min_group_size,
        "groups": groups,
    }


def _fmt(x: object, spec: str) -> str:
    return "–" if x is None else format(x, spec)


def audit_table(report: dict) -> str:
    """Markdown table of an :func:`audit_report`, groups by size (largest first)."""
    lines = [
        f"Rows: {report['n']:,}; positive: {report['n_pos']:,} "
        f"(base rate {_fmt(report['base_rate'], '.3f')}). "
        f"Groups under {report['min_group_size']} rows are marked *small*.",
        "",
        "| group | n | share | label rate | log-odds ratio [95% CI] | chi² p | note |",
        "|---|---:|---:|---:|---|---:|---|",
    ]
    items = sorted(report["groups"].items(), key=lambda kv: (kv[0] == NONE_GROUP, -kv[1]["n"], kv[0]))
    empty = [g for g, s in items if s["n"] == 0]
    for g, s in items:
        if s["n"] == 0:
            continue
        if s["log_odds_ratio"] is None:
            lor = "–"
        else:
            lor = f"{s['log_odds_ratio']:+.2f} [{s['ci_low']:+.2f}, {s['ci_high']:+.2f}]"
        p = s["p_value"]
        p_s = "–" if p is None else (f"{p:.1e}" if p < 1e-3 else f"{p:.3f}")
        note = "small" if s["small"] else ""
        lines.append(
            f"| {g} | {s['n']:,} | {_fmt(s['share'], '.3f')} | {_fmt(s['label_rate'], '.3f')} | {lor} | {p_s} | {note} |"
        )
    if empty:
        lines += ["", f"No rows for {len(empty)} group(s): {', '.join(empty)}."]
    return "\n".join(lines) + "\n"
