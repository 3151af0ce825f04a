"""The last step of the corpus pipeline on one batch: balance and augment the training rows.

The driver turns the merged training cell counts into a plan (:func:`plan_from_counts`:
Kamiran-Calders weights, or a resampling plan whose per-cell thresholds the job adds from its
histogram passes); :func:`finalize_batch` applies it to a batch of kept, de-duplicated rows and
runs the counterfactual augmentation (:mod:`debias.corpus.augment`); validation and test rows
pass through. :func:`with_membership` adds the ``g_<group>`` flags back from ``groups``, for
the job, whose intermediates leave them out.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from debias.corpus import balance, resample
from debias.corpus.augment import counterfactual_batch
from debias.corpus.dedup import keep_table
from debias.corpus.prepare import member_groups
from debias.identity.annotate import membership_flags
from debias.identity.tools import lexicon_for, swaps_for
from debias.io import to_arrow
from debias.schema import group_column, group_columns

__all__ = ["finalize_batch", "finalize_table", "plan_from_counts", "train_rows", "with_membership"]


def train_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The batch's training rows (what balancing is computed over)."""
    return df[df["split"] == "train"]


def finalize_batch(df: pd.DataFrame, *, cfg: dict[str, Any], plan: dict[str, Any]) -> pd.DataFrame:
    """Balance and augment the training rows of one batch; val/test rows pass through.

    ``plan`` holds what the distributed passes computed: ``weights`` (reweight),
    ``resample`` plan and ``thresholds`` (resampling), ``group_counts``.
    """
    df = df.drop(columns=["dedup_key", "row_ref"], errors="ignore").reset_index(drop=True)
    bal, aug = cfg["balance"], cfg["augment"]
    is_train = df["split"] == "train"
    train, rest = df[is_train], df[~is_train].copy()
    rest["sample_weight"] = 1.0
    if bal["strategy"] == "reweight":
        train = balance.apply_weights(train, weights=plan["weights"], intersectional=bal["intersectional"],
                                      group_counts=plan["group_counts"])
    elif bal["strategy"] in ("oversample", "undersample", "hybrid"):
        train = resample.apply_resample(train, plan=plan["resample"], thresholds=plan["thresholds"])
        train = train.assign(sample_weight=1.0)
    else:
        train = train.assign(sample_weight=1.0)
    out = pd.concat([train, rest], ignore_index=True)
    out["pair_id"] = pd.Series([None] * len(out), dtype=object)
    out["is_augmented"] = False
    if aug["mode"] != "none":
        out = _augment(out, cfg=cfg, only_train=aug["mode"] in ("append", "replace"))
    out = out.drop(columns=["resampled_from"], errors="ignore")
    # Typed even when a batch has no pairs, so every output file has the same schema.
    out["pair_id"] = out["pair_id"].astype("string")
    out["is_augmented"] = out["is_augmented"].astype(bool)
    out["sample_weight"] = out["sample_weight"].astype("float64")
    return out.reset_index(drop=True)


def _augment(df: pd.DataFrame, *, cfg: dict[str, Any], only_train: bool) -> pd.DataFrame:
    """Counterfactual augmentation; generated rows are re-annotated by ``counterfactual_batch``."""
    ann, aug = cfg["annotate"], cfg["augment"]
    lex = lexicon_for(ann["axes"], ann["lexicon_dir"])
    table = swaps_for(aug["axes"], aug["swap_dir"])
    target = df[df["split"] == "train"] if only_train else df
    other = df[df["split"] != "train"] if only_train else df.iloc[0:0]
    augmented = counterfactual_batch(target.drop(columns=["pair_id", "is_augmented"]), table=table, lexicon=lex,
                                     mode=aug["mode"], probability=aug["probability"], seed=cfg["seed"],
                                     pair_col="text_pair" if "text_pair" in target.columns else None)
    return pd.concat([augmented, other], ignore_index=True)


def plan_from_counts(cells: pd.DataFrame, *, cfg: dict[str, Any],
                     group_counts: dict[str, int] | None) -> dict[str, Any]:
    """Weights or a resampling plan from the merged training cell counts (driver side, small)."""
    bal = cfg["balance"]
    plan: dict[str, Any] = {"cell_counts": cells, "group_counts": group_counts}
    if bal["strategy"] == "reweight":
        plan["weights"] = balance.compute_weights(cells, method=bal["weighting"])
    elif bal["strategy"] in ("oversample", "undersample", "hybrid"):
        targets = resample.target_counts(cells, strategy=bal["strategy"])
        plan["resample"] = resample.resample_plan(cells, targets, seed=cfg["seed"],
                                                 intersectional=bal["intersectional"], group_counts=group_counts)
    return plan


def with_membership(table: pa.Table, groups: list[str]) -> pa.Table:
    """The ``g_<group>`` columns back, after ``groups``, rebuilt from it (the job's intermediate
    leaves them out: many boolean columns are dearer to write and read back than to rebuild).
    The flags are bit-packed by numpy straight into Arrow's boolean buffers."""
    if not groups or group_column(groups[0]) in table.column_names:
        return table
    flags = membership_flags(table["groups"], groups)
    n = table.num_rows
    packed = np.packbits(np.ascontiguousarray(flags.T), axis=1, bitorder="little")  # one row per group
    columns = [pa.Array.from_buffers(pa.bool_(), n, [None, pa.py_buffer(packed[i])]) for i in range(len(groups))]
    at = table.column_names.index("groups") + 1
    out = pa.Table.from_arrays(table.columns[:at] + columns + table.columns[at:],
                               names=table.column_names[:at] + group_columns(groups) + table.column_names[at:])
    return out.replace_schema_metadata(table.schema.metadata)


def finalize_table(table: pa.Table, *, cfg: dict[str, Any], plan: dict[str, Any],
                   drop_refs: Any = None) -> pa.Table:
    """A prepared table's kept rows minus ``drop_refs`` (:func:`debias.corpus.dedup.keep_table`)
    -> :func:`finalize_batch` -> :func:`with_membership`: the rows dropped are never converted
    to pandas, and the kept ones once; the flags are added last, so fewer columns go through
    balancing and augmentation, and the rows augmentation adds get theirs from their new groups
    like every other row."""
    kept = keep_table(table, drop_refs=drop_refs)
    return with_membership(to_arrow(finalize_batch(kept.to_pandas(), cfg=cfg, plan=plan)), member_groups(cfg))
