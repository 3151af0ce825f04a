"""One training step and what feeds it: tokenisation, length-bucketed dynamic-padding batches,
the model wrapper with the optional adversary, validation metrics, early stopping, and the
checkpointed state. Plain torch and pandas; ``jobs/train.py`` wires it into Ray Train.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import roc_auc_score

from debias.evaluation.predict import positive_probability
from debias.metrics import bias_auc
from debias.schema import NO_GROUP, group_name
from debias.training.losses import AdversaryHead, FairnessObjective, LossInputs
from debias.training.model import collate, encode, load_tokenizer, wants_token_type_ids

# ---------------------------------------------------------------- data: groups, pairs, tokens


def membership_matrix(df: pd.DataFrame, group_cols: list[str]) -> np.ndarray:
    """``(rows, K)`` float32 0/1 matrix from the ``g_<group>`` columns (missing column: 0)."""
    out = np.zeros((len(df), len(group_cols)), dtype=np.float32)
    for j, c in enumerate(group_cols):
        if c in df.columns:
            out[:, j] = df[c].fillna(False).astype(bool).to_numpy()
    return out


def partner_texts(df: pd.DataFrame) -> dict[str, str]:
    """Map each paired row's ``id`` to the text of its counterfactual partner.

    Pairs share ``pair_id`` (set by the augment stage): the source row's partner is its first
    augmented row (by id, so deterministic), and every augmented row's partner is the source.
    Rows whose pair has no other member are left out.
    """
    need = {"id", "pair_id", "text", "is_augmented"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"partner_texts needs columns {sorted(need)}; missing {sorted(missing)}")
    paired = df.loc[df["pair_id"].notna(), ["id", "pair_id", "text", "is_augmented"]]
    out: dict[str, str] = {}
    for _, grp in paired.sort_values("id").groupby("pair_id", sort=False):
        if len(grp) < 2:
            continue
        aug = grp["is_augmented"].astype(bool).to_numpy()
        src = grp.loc[~aug]
        cfs = grp.loc[aug]
        if len(src) == 0 or len(cfs) == 0:
            continue
        src_id, src_text = src["id"].iloc[0], src["text"].iloc[0]
        out[src_id] = cfs["text"].iloc[0]
        for rid in cfs["id"]:
            out[rid] = src_text
    return out


def add_partner_text(df: pd.DataFrame, *, partners: dict[str, str]) -> pd.DataFrame:
    """Add ``cf_text`` (the partner's text, or None) from :func:`partner_texts`."""
    out = df.copy()
    out["cf_text"] = [partners.get(i) for i in df["id"]]
    return out


class Tokenize:
    """``map_batches`` callable: adds ``input_ids`` (unpadded) and ``n_tokens`` (and
    ``cf_input_ids`` when a ``cf_text`` column is there). Padding happens per batch later."""

    def __init__(self, model_dir: str, *, max_length: int = 128) -> None:
        self.tokenizer = load_tokenizer(model_dir)
        self.max_length = int(max_length)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if "text" not in batch.columns:
            raise ValueError(f"missing column 'text'; columns present: {', '.join(batch.columns)}")
        out = batch.copy()
        ids = encode(batch["text"].tolist(), self.tokenizer, max_length=self.max_length)
        out["input_ids"] = [np.asarray(x, dtype=np.int32) for x in ids]
        out["n_tokens"] = np.array([len(x) for x in ids], dtype=np.int32)
        if "cf_text" in batch.columns:
            has = batch["cf_text"].notna().to_numpy()
            texts = batch.loc[has, "cf_text"].tolist()
            cf = iter(encode(texts, self.tokenizer, max_length=self.max_length))
            empty = np.zeros(0, dtype=np.int32)
            out["cf_input_ids"] = [np.asarray(next(cf), dtype=np.int32) if h else empty for h in has]
        return out


def bucket_batches(window: pd.DataFrame, *, batch_size: int, seed: int) -> list[pd.DataFrame]:
    """Cut a window of rows into batches of similar length, in a shuffled batch order.

    Sorting by ``n_tokens`` inside a window of a few dozen batches keeps the padding per batch
    small while the window (and the shuffled batch order) keeps training order random.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; found {batch_size}")
    if len(window) == 0:
        return []
    rng = np.random.default_rng(seed)
    # A random tie-break so equal lengths don't keep their input order epoch after epoch.
    key = window["n_tokens"].to_numpy().astype(np.float64) + rng.random(len(window)) * 0.5
    order = np.argsort(key, kind="stable")
    batches = [window.iloc[order[i:i + batch_size]] for i in range(0, len(order), batch_size)]
    perm = rng.permutation(len(batches))
    return [batches[i] for i in perm]


@dataclass
class TrainBatch:
    inputs: dict[str, torch.Tensor]
    y: torch.Tensor
    sample_weight: torch.Tensor
    membership: torch.Tensor
    cf_inputs: dict[str, torch.Tensor] | None = None
    cf_index: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> TrainBatch:
        def mv(d):
            return None if d is None else {k: v.to(device, non_blocking=True) for k, v in d.items()}
        return TrainBatch(mv(self.inputs), self.y.to(device), self.sample_weight.to(device),
                          self.membership.to(device), mv(self.cf_inputs),
                          None if self.cf_index is None else self.cf_index.to(device))


def make_batch(df: pd.DataFrame, *, group_cols: list[str], pad_id: int, token_type_ids: bool = True,
               pad_to: int | None = None, counterfactuals: bool = False) -> TrainBatch:
    """Tensors for one step from a tokenised frame (``input_ids``, ``label``, ``g_*`` ...).

    ``pad_to`` pads to a fixed length instead of the longest row (the fixed-padding baseline).
    """
    ids = [list(x) for x in df["input_ids"]]
    inputs = collate(ids, pad_id=pad_id, pad_to=pad_to, token_type_ids=token_type_ids)
    y = torch.as_tensor(df["label"].to_numpy().astype(np.int64))
    w = (df["sample_weight"].to_numpy(dtype=np.float32) if "sample_weight" in df.columns
         else np.ones(len(df), dtype=np.float32))
    batch = TrainBatch(inputs, y, torch.as_tensor(w),
                       torch.as_tensor(membership_matrix(df, group_cols)))
    if counterfactuals and "cf_input_ids" in df.columns:
        rows = [i for i, x in enumerate(df["cf_input_ids"]) if x is not None and len(x) > 0]
        if rows:
            cf = [list(df["cf_input_ids"].iloc[i]) for i in rows]
            batch.cf_inputs = collate(cf, pad_id=pad_id, pad_to=pad_to, token_type_ids=token_type_ids)
            batch.cf_index = torch.as_tensor(rows, dtype=torch.long)
    return batch


# ---------------------------------------------------------------- model wrapper and one step


def _pad_cols(t: torch.Tensor, length: int, value: int) -> torch.Tensor:
    if t.shape[1] == length:
        return t
    pad = t.new_full((t.shape[0], length - t.shape[1]), value)
    return torch.cat([t, pad], dim=1)


class FairClassifier(torch.nn.Module):
    """The HF classifier plus, when the adversarial loss is on, an adversary head.

    Counterfactual partners go through the same forward call as the batch (concatenated), so
    DDP sees one forward per step and the extra cost is exactly the partners' rows.
    """

    def __init__(self, model: torch.nn.Module, *, n_groups: int = 0,
                 adversary: dict[str, Any] | None = None, pad_id: int = 0) -> None:
        super().__init__()
        self.model = model
        self.pad_id = int(pad_id)
        self.adversary = None
        if adversary is not None:
            hidden = int(model.config.hidden_size)
            self.adversary = AdversaryHead(hidden, n_groups, width=int(adversary.get("width", 64)),
                                           alpha=float(adversary.get("alpha", 1.0)))

    def forward(self, inputs: dict[str, torch.Tensor], cf_inputs: dict[str, torch.Tensor] | None = None):
        n = inputs["input_ids"].shape[0]
        if cf_inputs is not None:
            length = max(inputs["input_ids"].shape[1], cf_inputs["input_ids"].shape[1])
            joined = {}
            for k in inputs:
                val = self.pad_id if k == "input_ids" else 0
                joined[k] = torch.cat([_pad_cols(inputs[k], length, val),
                                       _pad_cols(cf_inputs[k], length, val)])
            inputs = joined
        out = self.model(**inputs, output_hidden_states=self.adversary is not None)
        logits = out.logits
        group_logits = None
        if self.adversary is not None:
            pooled = out.hidden_states[-1][:n, 0]  # (B, H): the [CLS] position, last layer
            group_logits = self.adversary(pooled)
        cf_logits = logits[n:] if cf_inputs is not None else None
        return logits[:n], cf_logits, group_logits


def train_step(module: torch.nn.Module, batch: TrainBatch, objective: FairnessObjective,
               optimizer: torch.optim.Optimizer, scheduler: Any = None, *,
               device: torch.device | str = "cpu", grad_clip: float | None = 1.0) -> dict[str, float]:
    """One optimisation step; returns the loss terms, the total and the number of rows.

    On CUDA the forward pass runs under bf16 autocast (the loss in fp32).
    """
    device = torch.device(device)
    module.train()
    b = batch.to(device)
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits, cf_logits, group_logits = module(b.inputs, b.cf_inputs)
    total, parts = objective(LossInputs(logits=logits, y=b.y, membership=b.membership,
                                        sample_weight=b.sample_weight, cf_logits=cf_logits,
                                        cf_index=b.cf_index, group_logits=group_logits))
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_([p for p in module.parameters() if p.requires_grad], grad_clip)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    return {**parts, "loss": float(total.detach()), "n": len(batch)}


def make_optimizer(module: torch.nn.Module, *, lr: float, weight_decay: float, total_steps: int,
                   warmup_ratio: float = 0.0) -> tuple[torch.optim.Optimizer, Any]:
    """AdamW (no decay on biases and LayerNorm) with linear warmup then linear decay."""
    decay, no_decay = [], []
    for name, p in module.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "norm" in name.lower() else decay).append(p)
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    total = max(int(total_steps), 1)
    warm = int(round(warmup_ratio * total))

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        return max(0.0, (total - step) / max(1, total - warm))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, factor)


# ---------------------------------------------------------------- validation


@torch.inference_mode()
def predict_frame(model: torch.nn.Module, df: pd.DataFrame, *, pad_id: int, token_type_ids: bool,
                  batch_size: int = 64, device: torch.device | str = "cpu") -> np.ndarray:
    """Positive-class probabilities for a tokenised frame (length-sorted batches)."""
    device = torch.device(device)
    model.eval()
    scores = np.empty(len(df), dtype=np.float64)
    order = np.argsort(df["n_tokens"].to_numpy(), kind="stable")
    ids = df["input_ids"].tolist()
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            inputs = collate([list(ids[j]) for j in idx], pad_id=pad_id, token_type_ids=token_type_ids)
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits
            scores[idx] = positive_probability(logits).cpu().numpy()
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


# ---------------------------------------------------------------- checkpointed state

WEIGHTS = "weights.safetensors"
TRAIN_STATE = "train_state.pt"


def save_training_state(path: str | Path, module: torch.nn.Module, *, optimizer: Any, scheduler: Any,
                        objective: FairnessObjective, extra: dict[str, Any]) -> None:
    """Weights as safetensors; optimiser, scheduler, loss state and ``extra`` (epoch, history,
    early stopping) as a tensors-and-primitives file that loads with ``weights_only=True``."""
    from safetensors.torch import save_model

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_model(module, str(path / WEIGHTS))
    state = {"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "objective": objective.state_dict(), "extra": extra}
    buf = io.BytesIO()
    torch.save(state, buf)
    (path / TRAIN_STATE).write_bytes(buf.getvalue())


def load_training_state(path: str | Path, module: torch.nn.Module, *, optimizer: Any = None,
                        scheduler: Any = None, objective: FairnessObjective | None = None) -> dict[str, Any]:
    """Restore what :func:`save_training_state` wrote; returns ``extra``."""
    from safetensors.torch import load_model

    path = Path(path)
    load_model(module, str(path / WEIGHTS), device=str(next(module.parameters()).device))
    state = torch.load(path / TRAIN_STATE, map_location="cpu", weights_only=True)
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if objective is not None:
        objective.load_state_dict(state["objective"])
    return state["extra"]


def read_training_extra(path: str | Path) -> dict[str, Any]:
    """Only the ``extra`` record (epoch, history ...) of a saved training state."""
    state = torch.load(Path(path) / TRAIN_STATE, map_location="cpu", weights_only=True)
    return state["extra"]


def tokenizer_info(model_dir: str) -> tuple[int, bool]:
    tok = load_tokenizer(model_dir)
    return (tok.pad_token_id if tok.pad_token_id is not None else 0), wants_token_type_ids(tok)


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
