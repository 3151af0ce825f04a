"""The first step of the corpus pipeline on one batch: row ids, clean, annotate, split.

``prepare_batch`` is what the job's first pass runs per input block and what
:func:`debias.corpus.local.run_local` runs on the whole frame; the later steps are
:mod:`debias.corpus.dedup` (exact duplicates), :mod:`debias.corpus.patterns` (the counts the
audit and balance plan need) and :mod:`debias.corpus.finalize` (balance + augment).

Order of work, and why it differs slightly from read -> ... -> augment -> split: the split is
assigned right after annotation (a hash of the row id) so that balancing and augmentation touch
only the training rows. Validation and test rows keep the corpus' natural distribution, which is
what an honest evaluation needs, and counterfactual partners inherit their source's split.
"""

from __future__ import annotations

import gc
import hashlib
from typing import Any

import numpy as np
import pandas as pd

from debias.corpus import clean, split
from debias.corpus.dedup import row_refs
from debias.identity.annotate import from_given_columns
from debias.identity.tools import annotator_for, lexicon_for
from debias.schema import READ_LINE, READ_RAW, READ_REJECT, READ_REJECT_REASONS, is_group_column

__all__ = ["INTERMEDIATE_PARQUET_ARGS", "PATH_COL", "freeze_startup_heap", "make_ids", "member_groups",
           "merge_pii_counts", "prepare_batch"]

PATH_COL = "path"  # added by Ray Data's include_paths, used only for generated ids
# Parquet writer settings for prepared rows written as an intermediate (read back once): texts,
# ids, keys and row refs are distinct per row, so a dictionary would be built and given up for
# each of them; dictionaries only for the few-valued columns (a nested column by its leaf's path).
INTERMEDIATE_PARQUET_ARGS = {"use_dictionary": ["label", "split", "groups.list.element", "reject_reason"]}


_FROZEN = False


def freeze_startup_heap() -> bool:
    """Once per process: collect, then move every object alive into the garbage collector's
    permanent generation (``gc.freeze``), so its full collections stop re-scanning them.

    The batch functions allocate millions of tracked objects (row lists, frames), so the
    collector runs full passes often, and each one also walked every object a Ray worker holds
    from its imports. Called at the start of the job's tasks and of
    :func:`debias.corpus.local.run_local` (the single process gets the same treatment).
    Objects alive now stay alive anyway; what this gives up is collecting cycles among them
    later. Returns True when it froze."""
    global _FROZEN
    if _FROZEN:
        return False
    gc.collect()
    gc.freeze()
    _FROZEN = True
    return True


def _as_str(values: pd.Series) -> pd.Series:
    """Every value as ``str`` (missing -> ``""``, bytes decoded as UTF-8 with replacement)."""
    def one(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, bytes):
            return v.decode("utf-8", errors="replace")
        return str(v)

    # Fast paths that skip the per-row Python call: columns that already hold strings, and
    # integer columns.
    if pd.api.types.is_integer_dtype(values.dtype) and not isinstance(values.dtype, pd.ArrowDtype) \
            and not pd.api.types.is_extension_array_dtype(values.dtype):
        return values.astype(str).astype(object)
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return values
    return values.map(one)


def make_ids(df: pd.DataFrame, *, id_col: str | None, text_col: str, label_col: str) -> pd.Series:
    """Row ids: the given id column where set, else ``h`` + 16 hex digits of a hash of the
    source path, raw text and raw label (stable across runs and partitionings)."""
    def generated(rows: pd.DataFrame) -> pd.Series:
        path = _as_str(rows[PATH_COL]) if PATH_COL in rows.columns else pd.Series("", index=rows.index)
        keys = path + "\x1f" + _as_str(rows[text_col]) + "\x1f" + _as_str(rows[label_col])
        return keys.map(lambda k: "h" + hashlib.blake2b(k.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest())

    if not id_col:
        return generated(df)
    given = _as_str(df[id_col])
    missing = (df[id_col].isna() | (given == "")).to_numpy()
    if not missing.any():  # hash only the rows without an id of their own
        return given
    out = given.astype(object).copy()
    out[missing] = generated(df[missing]).to_numpy()
    return out


def _read_rejects(df: pd.DataFrame) -> pd.Series | None:
    """The rows the reader (debias.corpus.read) rejected with a reason of its own stage, or None."""
    if READ_REJECT not in df.columns:
        return None
    read = df[READ_REJECT].isin(list(READ_REJECT_REASONS))
    return read if read.any() else None


def _place_read_rejects(out: pd.DataFrame, df: pd.DataFrame, read: pd.Series, *, id_col: str | None) -> None:
    """A read reject's raw text is its raw record (where the reader kept one) and its raw label
    empty; its id is the record's own where it gave one, else ``<path>:<line>`` (where the line is
    known), which finds it in the input."""
    rows = read.to_numpy()
    if READ_RAW in df.columns:
        raw = df.loc[rows, READ_RAW]
        has = raw.notna().to_numpy()
        idx = out.index[rows][has]
        out.loc[idx, "raw_text"] = raw[has].astype(str).to_numpy()
        out.loc[idx, "raw_label"] = ""
    if READ_LINE in df.columns:
        line = df.loc[rows, READ_LINE]
        given = df.loc[rows, id_col].notna().to_numpy() & (_as_str(df.loc[rows, id_col]) != "").to_numpy() \
            if id_col else np.zeros(int(rows.sum()), dtype=bool)
        where = line.notna().to_numpy() & ~given
        if where.any():
            path = _as_str(df.loc[rows, PATH_COL]) if PATH_COL in df.columns else pd.Series("", index=line.index)
            out.loc[out.index[rows][where], "id"] = (
                path[where] + ":" + line[where].astype("int64").astype(str)).to_numpy()


def member_groups(cfg: dict[str, Any]) -> list[str]:
    """The groups that get a ``g_<group>`` column in :func:`prepare_batch`'s output, in its
    order: the lexicon's groups, or (given identity columns) those and the columns' groups,
    sorted."""
    ann = cfg["annotate"]
    lex = lexicon_for(ann["axes"], ann["lexicon_dir"])
    given = cfg["data"]["identity"]["columns"]
    return sorted(set(lex.group_names) | set(given)) if given else list(lex.group_names)


def merge_pii_counts(counts: Any) -> dict[str, int]:
    """The sum of several ``pii_masked`` dicts (kind -> matches masked), keys sorted."""
    total: dict[str, int] = {}
    for c in counts:
        for kind, n in c.items():
            total[kind] = total.get(kind, 0) + int(n)
    return dict(sorted(total.items()))


def prepare_batch(df: pd.DataFrame, *, cfg: dict[str, Any], flags: bool = True) -> pd.DataFrame:
    """Read -> clean -> annotate -> split on one batch.

    ``cfg`` is ``PipelineConfig.model_dump()``. Returns the canonical columns plus
    ``dedup_key`` and ``reject_reason`` (null for kept rows); rejected rows carry their raw
    text and label as strings so the rejects output shows what was wrong. ``flags=False``
    leaves out the ``g_<group>`` columns (a function of ``groups``: ``membership_flags``).
    ``out.attrs["pii_masked"]`` is the clean step's count of PII masked per kind (every row of
    the batch, rejected ones included; mergeable by adding).
    """
    data = cfg["data"]
    out = pd.DataFrame(index=df.index)
    out["id"] = make_ids(df, id_col=data["id_col"], text_col=data["text_col"], label_col=data["label_col"])
    cleaned = clean.clean_batch(df, text_col=data["text_col"], label_col=data["label_col"],
                                label_map=data["label_map"], params=cfg["clean"],
                                class_names=data.get("class_names"), label_threshold=data.get("label_threshold"),
                                pair_col=data.get("text_pair_col"))
    out["text"] = cleaned["text"].astype(object)
    pair_col = "text_pair" if "text_pair" in cleaned.columns else None
    if pair_col:
        out[pair_col] = cleaned[pair_col].astype(object)
    out["label"] = cleaned["label"]
    if "label_score" in cleaned.columns:
        out["label_score"] = cleaned["label_score"].to_numpy(dtype=np.float64)
    out["dedup_key"] = cleaned["dedup_key"]
    out["reject_reason"] = cleaned["reject_reason"]
    if READ_REJECT in df.columns and df[READ_REJECT].notna().any():
        # The reader's reason comes first (its undecodable_text too: the text it hands on has
        # U+FFFD where the bytes were, which clean cannot tell from a real U+FFFD).
        by_reader = df[READ_REJECT].notna().to_numpy()
        out.loc[by_reader, "reject_reason"] = df.loc[by_reader, READ_REJECT].to_numpy()
    read = _read_rejects(df)
    rejected = out["reject_reason"].notna()
    for raw, col in (("raw_text", data["text_col"]), ("raw_label", data["label_col"])):
        values = pd.Series(None, index=df.index, dtype=object)  # kept rows: null
        if rejected.any():
            values[rejected.to_numpy()] = _as_str(df.loc[rejected.to_numpy(), col]).to_numpy()
        out[raw] = values
    if read is not None:
        _place_read_rejects(out, df, read, id_col=data["id_col"])
    out["text"] = out["text"].where(~rejected, "")
    if pair_col:
        out[pair_col] = out[pair_col].where(~rejected, "")
    out["label"] = out["label"].fillna(-1).astype("int64")

    ann = cfg["annotate"]
    if data["identity"]["columns"]:
        groups = from_given_columns(df, columns=data["identity"]["columns"],
                                    threshold=data["identity"]["threshold"], all_groups=member_groups(cfg),
                                    flags=flags)
        for col in groups.columns:
            if col == "groups" or is_group_column(col):
                out[col] = groups[col].values
    else:
        annotated = annotator_for(ann["axes"], ann["lexicon_dir"])(out, text_col="text", flags=flags,
                                                                   pair_col=pair_col)
        for col in annotated.columns:
            if col in ("groups", "groups_text", "groups_pair") or is_group_column(col):
                out[col] = annotated[col].values
    s = cfg["split"]
    out = split.assign_split(out, fractions={"train": s["train"], "val": s["val"], "test": s["test"]},
                             seed=cfg["seed"], key_col="id")
    out["row_ref"] = row_refs(out["id"], df[PATH_COL] if PATH_COL in df.columns else None, out["dedup_key"])
    out = out.reset_index(drop=True)
    out.attrs["pii_masked"] = dict(cleaned.attrs.get("pii_masked", {}))
    return out
