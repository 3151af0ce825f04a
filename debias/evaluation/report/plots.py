"""Figures for the fairness report, as ``data:image/png;base64,...`` URIs (no files, no network).

Every figure says in its axis labels what is plotted and which way is better; colours are the
same across figures: blue for negative-class rows, red for positive-class ones, grey for "overall".
Class names (``class_names = (negative, positive)``) label the axes; the default is the toxicity task's.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from debias.schema import CLASS_NAMES

BLUE, RED, GREY, GREEN = "#2b6cb0", "#c53030", "#718096", "#2f855a"


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "figure.dpi": 100, "svg.fonttype": "none"})
    return plt


def to_uri(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", dpi=100)
    _plt().close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _num(x) -> float:
    return math.nan if x is None else float(x)


def interval_plot(rows: Sequence[Mapping], *, metric: str, title: str, xlabel: str,
                  overall: float | None = None, label_col: str = "group") -> str:
    """One dot per group with its confidence interval; a dashed line at the overall value."""
    plt = _plt()
    rows = [r for r in rows if r.get(metric) is not None]
    fig, ax = plt.subplots(figsize=(5.2, 0.28 * max(len(rows), 3) + 1.0))
    if not rows:
        ax.text(0.5, 0.5, "no group with a value", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return to_uri(fig)
    y = np.arange(len(rows))[::-1]
    v = np.array([_num(r[metric]) for r in rows])
    lo = np.array([_num(r.get(f"{metric}_lo", r[metric])) for r in rows])
    hi = np.array([_num(r.get(f"{metric}_hi", r[metric])) for r in rows])
    lo, hi = np.where(np.isnan(lo), v, lo), np.where(np.isnan(hi), v, hi)
    small = np.array([bool(r.get("small_group")) for r in rows])
    ax.errorbar(v, y, xerr=[np.clip(v - lo, 0, None), np.clip(hi - v, 0, None)], fmt="none",
                ecolor="#a0aec0", elinewidth=2, capsize=2)
    ax.scatter(v[~small], y[~small], color=BLUE, zorder=3, s=18, label="group")
    if small.any():
        ax.scatter(v[small], y[small], facecolors="white", edgecolors=BLUE, zorder=3, s=18,
                   label="small group (few rows, wide interval)")
    if overall is not None and not math.isnan(_num(overall)):
        ax.axvline(_num(overall), color=GREY, ls="--", lw=1, label="all rows")
    ax.set_yticks(y, [str(r[label_col]) for r in rows])
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(loc="best", fontsize=7, frameon=False)
    return to_uri(fig)


def roc_curves(df: pd.DataFrame, groups: Sequence[str], *, title: str,
               class_names: tuple[str, str] = CLASS_NAMES) -> str:
    """ROC curve of all rows and of the rows mentioning each group (up to 8 groups)."""
    from sklearn.metrics import roc_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    y, s = df["y_true"].astype(int).to_numpy(), df["y_score"].to_numpy(dtype=float)
    if len(np.unique(y)) == 2:
        fpr, tpr, _ = roc_curve(y, s)
        ax.plot(fpr, tpr, color="black", lw=2, label="all rows")
    member = df["groups"].map(lambda g: set(g) if g is not None else set())
    cmap = plt.get_cmap("tab10")
    for k, g in enumerate(groups[:8]):
        m = member.map(lambda x, g=g: g in x).to_numpy()
        if len(np.unique(y[m])) == 2:
            fpr, tpr, _ = roc_curve(y[m], s[m])
            ax.plot(fpr, tpr, color=cmap(k % 10), lw=1.2, label=g)
    ax.plot([0, 1], [0, 1], color="#cbd5e0", lw=1, ls=":")
    neg, pos = class_names
    ax.set_xlabel(f"False-positive rate ({neg} flagged {pos}) — lower is better")
    ax.set_ylabel(f"True-positive rate ({pos} caught) — higher is better")
    ax.set_title(title, loc="left", fontsize=10)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return to_uri(fig)


def score_distributions(df: pd.DataFrame, groups: Sequence[str], *, threshold: float, title: str,
                        class_names: tuple[str, str] = CLASS_NAMES) -> str:
    """Box plots of the score per group, negative (blue) and positive (red) rows side by side."""
    neg, pos = class_names
    plt = _plt()
    groups = list(groups[:12])
    fig, ax = plt.subplots(figsize=(max(4.8, 0.55 * (len(groups) + 1) + 1.5), 3.4))
    member = df["groups"].map(lambda g: set(g) if g is not None else set())
    names = ["all rows", *groups]
    y = df["y_true"].astype(int).to_numpy()
    s = df["y_score"].to_numpy(dtype=float)
    for i, g in enumerate(names):
        m = np.ones(len(df), bool) if i == 0 else member.map(lambda x, g=g: g in x).to_numpy()
        for off, lab, col in ((-0.18, 0, BLUE), (0.18, 1, RED)):
            vals = s[m & (y == lab)]
            if len(vals):
                bp = ax.boxplot([vals], positions=[i + off], widths=0.3, patch_artist=True,
                                showfliers=False, manage_ticks=False)
                for b in bp["boxes"]:
                    b.set(facecolor=col, alpha=0.35, edgecolor=col)
                for part in ("medians", "whiskers", "caps"):
                    for ln in bp[part]:
                        ln.set(color=col)
    ax.axhline(threshold, color=GREY, ls="--", lw=1)
    ax.text(len(names) - 0.5, threshold, f" threshold {threshold:g}", va="bottom", ha="right",
            fontsize=7, color=GREY)
    ax.set_xticks(range(len(names)), names, rotation=35, ha="right")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel(f"Score (0 = {neg}, 1 = {pos})")
    ax.set_title(title + f"  (blue: {neg} rows, should be low; red: {pos} rows, should be high)",
                 loc="left", fontsize=9)
    return to_uri(fig)


def bar_plot(labels: Sequence[str], values: Sequence[float], *, title: str, xlabel: str,
             lo: Sequence[float] | None = None, hi: Sequence[float] | None = None,
             signed: bool = False) -> str:
    """Horizontal bars (optionally with intervals); ``signed`` colours negative bars blue."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 0.28 * max(len(labels), 3) + 1.0))
    if not len(labels):
        ax.text(0.5, 0.5, "nothing to show", ha="center", va="center", transform=ax.transAxes)
        ax.set_axis_off()
        return to_uri(fig)
    v = np.array([_num(x) for x in values])
    y = np.arange(len(labels))[::-1]
    colors = [BLUE if (signed and x < 0) else RED for x in v]
    xerr = None
    if lo is not None and hi is not None:
        lo_a, hi_a = np.array([_num(x) for x in lo]), np.array([_num(x) for x in hi])
        xerr = [np.nan_to_num(np.clip(v - lo_a, 0, None)), np.nan_to_num(np.clip(hi_a - v, 0, None))]
    ax.barh(y, v, color=colors, alpha=0.7, xerr=xerr, ecolor="#4a5568", capsize=2)
    if signed:
        ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, list(labels))
    ax.set_xlabel(xlabel)
    ax.set_title(title, loc="left", fontsize=10)
    return to_uri(fig)


def pareto_plot(points: Sequence[Mapping], *, x: str, y: str, xlabel: str, ylabel: str, title: str) -> str:
    """Runs as points (higher is better on both axes); the Pareto front joins the undominated ones."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.2, 4.0))
    pts = [(p["name"], _num(p.get(x)), _num(p.get(y))) for p in points]
    ok = [(n, a, b) for n, a, b in pts if not (math.isnan(a) or math.isnan(b))]
    for n, a, b in ok:
        ax.scatter([a], [b], s=40, color=BLUE, zorder=3)
        ax.annotate(n, (a, b), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = [p for p in ok if not any((q[1] >= p[1] and q[2] >= p[2]) and (q[1] > p[1] or q[2] > p[2])
                                      for q in ok)]
    front.sort(key=lambda p: p[1])
    if len(front) > 1:
        ax.plot([p[1] for p in front], [p[2] for p in front], color=GREEN, lw=1.5, ls="--",
                label="Pareto front (no run is better on both)")
        ax.legend(fontsize=7, frameon=False, loc="lower left")
    if not ok:
        ax.text(0.5, 0.5, "no run has both values", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, loc="left", fontsize=10)
    ax.margins(0.15)
    return to_uri(fig)
