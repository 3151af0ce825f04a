"""What a training step eats: group membership, counterfactual partners, tokens, and
length-bucketed dynamic-padding batches.

Rows are tokenised once, unpadded (:class:`Tokenize`, a ``map_batches`` callable); a window of
a few dozen batches is then sorted by length and cut (:func:`bucket_batches`), and each batch
is padded only to its own longest row (:func:`make_batch`). Plain pandas and torch, no Ray.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from debias.schema import TEXT_PAIR
from debias.training.model import collate, encode_pairs, load_tokenizer

__all__ = ["Tokenize", "TrainBatch", "add_partner_text", "bucket_batches", "iter_train_batches",
           "make_batch", "membership_matrix", "partner_texts", "window_batches"]


def membership_matrix(df: pd.DataFrame, group_cols: list[str]) -> np.ndarray:
    """``(rows, K)`` float32 0/1 matrix from the ``g_<group>`` columns (missing column: 0)."""
    out = np.zeros((len(df), len(group_cols)), dtype=np.float32)
    for j, c in enumerate(group_cols):
        if c in df.columns:
            out[:, j] = df[c].fillna(False).astype(bool).to_numpy()
    return out


def partner_texts(df: pd.DataFrame, *, text_col: str = "text") -> dict[str, str]:
    """Map each paired row's ``id`` to the text (``text_col``: ``text_pair`` for a pair task's
    second text) of its counterfactual partner.

    Pairs share ``pair_id`` (set by the augment stage): the source row's partner is its first
    augmented row (by id, so deterministic), and every augmented row's partner is the source.
    Rows whose pair has no other member are left out.
    """
    need = {"id", "pair_id", text_col, "is_augmented"}
    missing = need - set(df.columns)
    if missing:
        raise ValueError(f"partner_texts needs columns {sorted(need)}; missing {sorted(missing)}")
    paired = df.loc[df["pair_id"].notna(), ["id", "pair_id", text_col, "is_augmented"]].rename(
        columns={text_col: "text"})
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


def add_partner_text(df: pd.DataFrame, *, partners: dict[str, str],
                     pair_partners: dict[str, str] | None = None) -> pd.DataFrame:
    """Add ``cf_text`` (the partner's text, or None) from :func:`partner_texts`, and with
    ``pair_partners`` (a pair task) ``cf_text_pair``, the partner's second text."""
    out = df.copy()
    out["cf_text"] = [partners.get(i) for i in df["id"]]
    if pair_partners is not None:
        out["cf_" + TEXT_PAIR] = [pair_partners.get(i) for i in df["id"]]
    return out


class Tokenize:
    """``map_batches`` callable: adds ``input_ids`` (unpadded) and ``n_tokens`` (and
    ``cf_input_ids`` when a ``cf_text`` column is there). Padding happens per batch later.

    A pair task's rows (a ``text_pair`` column) are encoded as text pairs, with ``n_first``,
    the first segment's length, from which the batch's ``token_type_ids`` are built (likewise
    ``cf_n_first`` for the partners, from ``cf_text`` and ``cf_text_pair``)."""

    def __init__(self, model_dir: str, *, max_length: int = 128) -> None:
        self.tokenizer = load_tokenizer(model_dir)
        self.max_length = int(max_length)

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        if "text" not in batch.columns:
            raise ValueError(f"missing column 'text'; columns present: {', '.join(batch.columns)}")
        out = batch.copy()
        paired = TEXT_PAIR in batch.columns
        ids, first = encode_pairs(batch["text"].tolist(), _seconds(batch, TEXT_PAIR), self.tokenizer,
                                  max_length=self.max_length)
        out["input_ids"] = [np.asarray(x, dtype=np.int32) for x in ids]
        out["n_tokens"] = np.array([len(x) for x in ids], dtype=np.int32)
        if paired:
            out["n_first"] = np.array(first, dtype=np.int32)
        if "cf_text" in batch.columns:
            has = batch["cf_text"].notna().to_numpy()
            seconds = _seconds(batch.loc[has], "cf_" + TEXT_PAIR)
            cf_ids, cf_first = encode_pairs(batch.loc[has, "cf_text"].tolist(), seconds, self.tokenizer,
                                            max_length=self.max_length)
            cf, cf_cut = iter(cf_ids), iter(cf_first)
            empty = np.zeros(0, dtype=np.int32)
            out["cf_input_ids"] = [np.asarray(next(cf), dtype=np.int32) if h else empty for h in has]
            if paired:
                out["cf_n_first"] = np.array([next(cf_cut) if h else 0 for h in has], dtype=np.int32)
        return out


def _seconds(df: pd.DataFrame, col: str) -> list[str | None] | None:
    """A pair column's texts (None where null), or None when the frame has no such column."""
    if col not in df.columns:
        return None
    return [v if isinstance(v, str) else None for v in df[col].tolist()]


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
    """The tensors of one step: padded ``inputs``, labels, weights, the ``(B, K)`` membership
    matrix and, with counterfactual pairing, the partners' inputs and the rows they belong to."""

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
    first = df["n_first"].tolist() if "n_first" in df.columns else None
    inputs = collate(ids, pad_id=pad_id, pad_to=pad_to, token_type_ids=token_type_ids, first_lengths=first)
    y = torch.as_tensor(df["label"].to_numpy().astype(np.int64))
    w = (df["sample_weight"].to_numpy(dtype=np.float32) if "sample_weight" in df.columns
         else np.ones(len(df), dtype=np.float32))
    batch = TrainBatch(inputs, y, torch.as_tensor(w),
                       torch.as_tensor(membership_matrix(df, group_cols)))
    if counterfactuals and "cf_input_ids" in df.columns:
        rows = [i for i, x in enumerate(df["cf_input_ids"]) if x is not None and len(x) > 0]
        if rows:
            cf = [list(df["cf_input_ids"].iloc[i]) for i in rows]
            cf_first = [int(df["cf_n_first"].iloc[i]) for i in rows] if "cf_n_first" in df.columns else None
            batch.cf_inputs = collate(cf, pad_id=pad_id, pad_to=pad_to, token_type_ids=token_type_ids,
                                      first_lengths=cf_first)
            batch.cf_index = torch.as_tensor(rows, dtype=torch.long)
    return batch


def window_batches(window: pd.DataFrame, *, batch_size: int, dynamic: bool, seed: int) -> list[pd.DataFrame]:
    """One window cut into batches: length-bucketed (``dynamic``, see :func:`bucket_batches`) or
    in input order (the fixed-padding baseline, where sorting by length buys nothing)."""
    if dynamic:
        return bucket_batches(window, batch_size=batch_size, seed=seed)
    return [window.iloc[i:i + batch_size] for i in range(0, len(window), batch_size)]


def iter_train_batches(windows: Iterable[pd.DataFrame], *, batch_size: int, dynamic: bool, seed: int,
                       group_cols: list[str], pad_id: int, token_type_ids: bool = True,
                       pad_to: int | None = None, counterfactuals: bool = False) -> Iterator[TrainBatch]:
    """Lazily turn tokenised windows into :class:`TrainBatch` es, window ``i`` cut with seed
    ``seed + i``; lazy, so a consumer that stops early never tensorises the rest."""
    for i, window in enumerate(windows):
        for bdf in window_batches(window, batch_size=batch_size, dynamic=dynamic, seed=seed + i):
            yield make_batch(bdf, group_cols=group_cols, pad_id=pad_id, token_type_ids=token_type_ids,
                             pad_to=pad_to, counterfactuals=counterfactuals)
