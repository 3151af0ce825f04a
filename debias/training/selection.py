"""Which epoch to keep: validation scores and metrics, the selection objective, early stopping,
the best-checkpoint rule, and the Pareto front over runs.

The metrics use the evaluation's own metric code (``debias.metrics``), so the checkpoint chosen
here is judged the way ``debias evaluate`` will judge it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from debias.evaluation.predict import class_probability
from debias.metrics import bias_auc
from debias.schema import NO_GROUP, group_name
from debias.training.model import collate

__all__ = ["NAN_SCORE", "VAL_METRICS", "EarlyStopping", "best_checkpoint", "epoch_score",
           "parse_objective", "pareto_front", "predict_frame", "selection_score", "validation_metrics"]

T = TypeVar("T")
NAN_SCORE = -1e9  # what a NaN validation objective counts as when ranking checkpoints


@torch.inference_mode()
def predict_frame(model: torch.nn.Module, df: pd.DataFrame, *, pad_id: int, token_type_ids: bool,
                  batch_size: int = 64, device: torch.device | str = "cpu", focus: int = 1) -> np.ndarray:
    """Probabilities of class ``focus`` (default 1, the positive class) for a tokenised frame
    (length-sorted batches)."""
    device = torch.device(device)
    model.eval()
    scores = np.empty(len(df), dtype=np.float64)
    order = np.argsort(df["n_tokens"].to_numpy(), kind="stable")
    ids = df["input_ids"].tolist()
    first = df["n_first"].tolist() if "n_first" in df.columns else None
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            inputs = collate([list(ids[j]) for j in idx], pad_id=pad_id, token_type_ids=token_type_ids,
                             first_lengths=None if first is None else [int(first[j]) for j in idx])
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
            scores[idx] = class_probability(logits, focus).cpu().numpy()
    return scores


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if len(np.unique(y)) == 2 else float("nan")


def validation_metrics(y_true: np.ndarray, y_score: np.ndarray, membership: np.ndarray,
                       group_names: list[str], *, threshold: float = 0.5,
                       min_group_size: int = 1) -> tuple[dict[str, float], pd.DataFrame]:
    """Overall metrics (``val_*``) and a per-group table (groups plus the no-group cell, ``__none__``).

    Fairness summaries over groups with at least ``min_group_size`` rows:
    ``val_dp_difference`` (max - min positive rate), ``val_eo_difference`` (max of the TPR and
    FPR ranges; Hardt et al. 2016), ``val_worst_group_accuracy``, ``val_min_group_auc``,
    ``val_min_bpsn_auc`` and ``val_min_bnsp_auc`` (Borkan et al. 2019). The no-group cell gets no
    BPSN/BNSP (it is the background, not an identity group).
    """
    y_true = np.asarray(y_true).astype(int)
    y_score = np.asarray(y_score, dtype=np.float64)
    y_pred = (y_score >= threshold).astype(int)
    m = np.asarray(membership, dtype=bool)
    none = ~m.any(axis=1) if m.size else np.ones(len(y_true), dtype=bool)
    cols = [m[:, j] for j in range(m.shape[1])] + [none]
    names = [group_name(g) for g in group_names] + [NO_GROUP]
    rows = []
    for name, mask in zip(names, cols, strict=True):
        n = int(mask.sum())
        if n == 0:
            continue
        yt, yp, ys = y_true[mask], y_pred[mask], y_score[mask]
        pos, neg = yt == 1, yt == 0
        rows.append({
            "group": name, "n": n, "n_pos": int(pos.sum()),
            "accuracy": float((yt == yp).mean()),
            "auc": _auc(yt, ys),
            "positive_rate": float(yp.mean()),
            "tpr": float(yp[pos].mean()) if pos.any() else float("nan"),
            "fpr": float(yp[neg].mean()) if neg.any() else float("nan"),
        })
    by_group = pd.DataFrame(rows, columns=["group", "n", "n_pos", "accuracy", "auc",
                                           "positive_rate", "tpr", "fpr"])
    # BPSN / BNSP AUC (Borkan et al. 2019) from the evaluation's own metric code, so that the
    # checkpoint chosen here is judged the way `debias evaluate` will judge it.
    pred = pd.DataFrame({"y_true": y_true, "y_score": y_score,
                         "groups": [[names[j] for j in np.flatnonzero(r)] for r in m]})
    bias = bias_auc(pred) if len(np.unique(y_true)) == 2 else pd.DataFrame(columns=["group"])
    by_group = by_group.merge(bias.reindex(columns=["group", "bpsn_auc", "bnsp_auc"]), on="group", how="left")
    big = by_group[by_group["n"] >= min_group_size]

    def rng(col: str) -> float:
        v = big[col].dropna()
        return float(v.max() - v.min()) if len(v) >= 2 else 0.0

    overall = {
        "val_n": int(len(y_true)),
        "val_accuracy": float((y_true == y_pred).mean()) if len(y_true) else float("nan"),
        "val_auc": _auc(y_true, y_score),
        "val_dp_difference": rng("positive_rate"),
        "val_eo_difference": max(rng("tpr"), rng("fpr")),
        "val_worst_group_accuracy": float(big["accuracy"].min()) if len(big) else float("nan"),
        "val_min_group_auc": float(big["auc"].min()) if big["auc"].notna().any() else float("nan"),
        "val_min_bpsn_auc": float(big["bpsn_auc"].min()) if big["bpsn_auc"].notna().any() else float("nan"),
        "val_min_bnsp_auc": float(big["bnsp_auc"].min()) if big["bnsp_auc"].notna().any() else float("nan"),
    }
    return overall, by_group


VAL_METRICS = ("val_accuracy", "val_auc", "val_dp_difference", "val_eo_difference",
               "val_worst_group_accuracy", "val_min_group_auc", "val_min_bpsn_auc", "val_min_bnsp_auc")

_TERM = re.compile(r"\s*([+-])?\s*(?:(\d+(?:\.\d*)?|\.\d+)\s*\*\s*)?([A-Za-z_][A-Za-z0-9_]*)\s*")


def parse_objective(expr: str, *, known: tuple[str, ...] | None = None) -> list[tuple[float, str]]:
    """Parse ``"val_auc - 0.5*val_eo_difference"`` into ``[(1.0, "val_auc"), (-0.5, ...)]``.

    ``known``: the metric names allowed (e.g. :data:`VAL_METRICS`); None accepts any name.
    """
    if not isinstance(expr, str) or not expr.strip():
        raise ValueError(f"selection objective must be a non-empty expression; found {expr!r}")
    terms, pos = [], 0
    while pos < len(expr):
        m = _TERM.match(expr, pos)
        if not m or m.end() == pos or (terms and m.group(1) is None):
            raise ValueError(f"cannot parse selection objective {expr!r} at position {pos}; expected "
                             "terms like 'val_auc - 0.5*val_eo_difference'")
        sign = -1.0 if m.group(1) == "-" else 1.0
        terms.append((sign * float(m.group(2) or 1.0), m.group(3)))
        pos = m.end()
    unknown = [n for _, n in terms if known is not None and n not in known]
    if unknown:
        raise ValueError(f"selection objective {expr!r} uses unknown metric(s) {unknown}; "
                         f"available: {', '.join(known)}")
    return terms


def selection_score(metrics: dict[str, float], objective: str) -> float:
    """Value of the validation objective (higher is better); NaN if any term is NaN/missing."""
    total = 0.0
    for coef, name in parse_objective(objective):
        if name not in metrics:
            raise ValueError(f"selection objective uses {name!r}; available: {', '.join(sorted(metrics))}")
        v = float(metrics[name])
        if math.isnan(v):
            return float("nan")
        total += coef * v
    return total


@dataclass
class EarlyStopping:
    """Stop after ``patience`` epochs without a better score (None: never stop early)."""

    patience: int | None = None
    best_: float = -math.inf
    best_epoch_: int = -1
    bad_epochs_: int = 0

    def update(self, score: float, epoch: int) -> tuple[bool, bool]:
        """``(improved, stop)`` after an epoch with ``score`` (NaN never improves)."""
        improved = not math.isnan(score) and score > self.best_
        if improved:
            self.best_, self.best_epoch_, self.bad_epochs_ = score, epoch, 0
        else:
            self.bad_epochs_ += 1
        stop = self.patience is not None and self.bad_epochs_ >= self.patience
        return improved, stop

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best_, "best_epoch": self.best_epoch_, "bad_epochs": self.bad_epochs_}

    def load_state_dict(self, s: dict[str, Any]) -> None:
        self.best_, self.best_epoch_, self.bad_epochs_ = float(s["best"]), int(s["best_epoch"]), int(s["bad_epochs"])



def epoch_score(overall: Mapping[str, float] | None, *, objective: str, train_loss: float) -> float:
    """The epoch's selection score: ``objective`` on the validation metrics ``overall``, or, with
    no validation split (``overall`` None), minus the train loss (lower loss wins). NaN counts as
    :data:`NAN_SCORE`, so a NaN epoch ranks below every real one but still ranks."""
    score = selection_score(overall, objective) if overall is not None else -float(train_loss)
    return score if not math.isnan(score) else NAN_SCORE


def best_checkpoint(scored: Sequence[tuple[T, Mapping[str, Any]]]) -> T | None:
    """The item whose reported metrics have the highest ``selection_score`` (missing:
    :data:`NAN_SCORE`); on ties the later ``epoch``. None when ``scored`` is empty.

    ``scored``: ``(item, metrics)`` pairs, e.g. Ray Train's ``result.best_checkpoints``.
    """
    if not scored:
        return None
    return max(scored, key=lambda t: (t[1].get("selection_score", NAN_SCORE), t[1].get("epoch", 0)))[0]


def pareto_front(points: pd.DataFrame, *, maximize: str, minimize: str) -> pd.Series:
    """Boolean mask of the points no other point beats on both axes.

    A point is dominated when another has ``maximize >=`` and ``minimize <=`` with at least
    one strict. Rows with NaN in either column are never on the front.
    """
    for col in (maximize, minimize):
        if col not in points.columns:
            raise ValueError(f"missing column {col!r}; columns present: {', '.join(map(str, points.columns))}")
    a = points[maximize].to_numpy(dtype=np.float64)
    b = points[minimize].to_numpy(dtype=np.float64)
    ok = ~(np.isnan(a) | np.isnan(b))
    front = np.zeros(len(points), dtype=bool)
    for i in np.flatnonzero(ok):
        beaten = ok & (a >= a[i]) & (b <= b[i]) & ((a > a[i]) | (b < b[i]))
        front[i] = not beaten.any()
    return pd.Series(front, index=points.index, name="on_front")
