"""The corpus pipeline as pure per-batch steps, and the same steps run in one process.

``jobs/preprocess.py`` runs these functions on Ray Data; ``run_local`` runs them on one pandas
frame. Both produce the same rows (the integration tests check this), and ``bench/preprocess.py``
times one against the other.

Order of work, and why it differs slightly from read -> ... -> augment -> split: the split is
assigned right after annotation (a hash of the row id) so that balancing and augmentation touch
only the training rows. Validation and test rows keep the corpus' natural distribution, which is
what an honest evaluation needs, and counterfactual partners inherit their source's split.
"""

from __future__ import annotations

import gc
import hashlib
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pac

from debias.corpus import audit, balance, clean, split
from debias.identity.annotate import IdentityAnnotator, from_given_columns
from debias.identity.swaps import counterfactual_batch
from debias.identity.tools import annotator_for, lexicon_for, swaps_for
from debias.io import arrow_string_lists
from debias.schema import REJECT_COLUMNS, is_group_column

PATH_COL = "path"  # added by Ray Data's include_paths, used only for generated ids
REJECT_COLS = REJECT_COLUMNS


_FROZEN = False


def freeze_startup_heap() -> bool:
    """Once per process: collect, then move every object alive into the garbage collector's
    permanent generation (``gc.freeze``), so its full collections stop re-scanning them.

    The batch functions allocate millions of tracked objects (row lists, frames), so the
    collector runs a full pass ~5 times per 250k rows; each pass also walked the ~110k
    objects a Ray worker holds from its imports: 0.6-1.0 of 6-8 CPU s per 250k-row prepare
    batch, 0.4 once frozen. Called at the start of the job's tasks and of :func:`run_local`
    (the single process gets the same treatment). Objects alive now stay alive anyway; what
    this gives up is collecting cycles among them later. Returns True when it froze."""
    global _FROZEN
    if _FROZEN:
        return False
    gc.collect()
    gc.freeze()
    _FROZEN = True
    return True


def cached_lexicon(axes: tuple[str, ...], lexicon_dir: str | None):
    return lexicon_for(axes, lexicon_dir)


def cached_annotator(axes: tuple[str, ...], lexicon_dir: str | None) -> IdentityAnnotator:
    return annotator_for(axes, lexicon_dir)


def cached_swaps(axes: tuple[str, ...], swap_dir: str | None):
    return swaps_for(axes, swap_dir)


def _as_str(values: pd.Series) -> pd.Series:
    """Every value as ``str`` (missing -> ``""``, bytes decoded as UTF-8 with replacement)."""
    def one(v: Any) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        if isinstance(v, bytes):
            return v.decode("utf-8", errors="replace")
        return str(v)

    # Fast paths (one Python call per row cost 0.5 s per 100k rows x 6 columns): columns that
    # already hold strings, and integer columns.
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


def member_groups(cfg: dict[str, Any]) -> list[str]:
    """The groups that get a ``g_<group>`` column in :func:`prepare_batch`'s output, in its
    order: the lexicon's groups, or (given identity columns) those and the columns' groups,
    sorted."""
    ann = cfg["annotate"]
    lex = cached_lexicon(tuple(ann["axes"]), ann["lexicon_dir"])
    given = cfg["data"]["identity"]["columns"]
    return sorted(set(lex.group_names) | set(given)) if given else list(lex.group_names)


def prepare_batch(df: pd.DataFrame, *, cfg: dict[str, Any], flags: bool = True) -> pd.DataFrame:
    """Read -> clean -> annotate -> split on one batch.

    ``cfg`` is ``PipelineConfig.model_dump()``. Returns the canonical columns plus
    ``dedup_key`` and ``reject_reason`` (null for kept rows); rejected rows carry their raw
    text and label as strings so the rejects output shows what was wrong. ``flags=False``
    leaves out the ``g_<group>`` columns (a function of ``groups``: ``membership_flags``).
    """
    data = cfg["data"]
    out = pd.DataFrame(index=df.index)
    out["id"] = make_ids(df, id_col=data["id_col"], text_col=data["text_col"], label_col=data["label_col"])
    cleaned = clean.clean_batch(df, text_col=data["text_col"], label_col=data["label_col"],
                                label_map=data["label_map"], params=cfg["clean"])
    out["text"] = cleaned["text"].astype(object)
    out["label"] = cleaned["label"]
    out["dedup_key"] = cleaned["dedup_key"]
    out["reject_reason"] = cleaned["reject_reason"]
    rejected = out["reject_reason"].notna()
    for raw, col in (("raw_text", data["text_col"]), ("raw_label", data["label_col"])):
        values = pd.Series(None, index=df.index, dtype=object)  # kept rows: null
        if rejected.any():
            values[rejected.to_numpy()] = _as_str(df.loc[rejected.to_numpy(), col]).to_numpy()
        out[raw] = values
    out["text"] = out["text"].where(~rejected, "")
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
        annotated = cached_annotator(tuple(ann["axes"]), ann["lexicon_dir"])(out, text_col="text", flags=flags)
        for col in annotated.columns:
            if col == "groups" or is_group_column(col):
                out[col] = annotated[col].values
    s = cfg["split"]
    out = split.assign_split(out, fractions={"train": s["train"], "val": s["val"], "test": s["test"]},
                             seed=cfg["seed"], key_col="id")
    out["row_ref"] = row_refs(out["id"], df[PATH_COL] if PATH_COL in df.columns else None, out["dedup_key"])
    return out.reset_index(drop=True)


def row_refs(ids: pd.Series, paths: pd.Series | None, keys: pd.Series) -> list[str]:
    """A reference for every row of a prepared batch, unique in practice across the corpus.

    A fingerprint of the batch (its source path, ids and dedup keys) plus the row's position
    in it. Two batches only share refs when they hold the same ids and texts from the same path
    in the same order (a duplicated file): then rows sharing a ref share their dedup key too,
    meet in one block of the de-duplication pass, and it falls back to its exact full-row
    shuffle (``jobs/preprocess.py``). So a ref alone names a row to drop.
    """
    h = hashlib.blake2b(digest_size=8)
    if paths is not None and len(paths):
        h.update(str(paths.iloc[0]).encode("utf-8", "surrogatepass"))
    for col in (ids, keys):  # as object arrays: iterating pandas' Arrow-backed str is 5x slower
        h.update("\x1f".join(map(str, np.asarray(col, dtype=object))).encode("utf-8", "surrogatepass"))
    fp = h.hexdigest()
    return [f"{fp}:{i}" for i in range(len(ids))]


def key_values(keys: Any) -> np.ndarray:
    """Each dedup key (16 hex digits, :func:`debias.corpus.clean.dedup_key`) as the uint64 it spells:
    the same key, the same number, so keys compare and sort as numbers (a string sort of a
    million keys took 10x longer). ``keys``: a pandas Series, a sequence of str, or an Arrow
    (chunked) string array.

    The digits are read straight from the Arrow array's data buffer (16 bytes a key) and packed
    two to a byte: 0.23 s for 2M keys, where joining them as Python strings took 0.86 s."""
    bad = ValueError("dedup keys must be 16 hex digits (debias.corpus.clean.dedup_key)")
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks() if keys.num_chunks else pa.array([], type=pa.string())
    if not isinstance(keys, pa.Array):
        try:
            keys = pa.array(np.asarray(keys, dtype=object), type=pa.string())
        except (pa.ArrowException, TypeError):
            raise bad from None
    if pa.types.is_large_string(keys.type) or pa.types.is_string_view(keys.type):
        keys = keys.cast(pa.string())
    if not pa.types.is_string(keys.type) or keys.null_count:
        raise bad
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.uint64)
    offsets = np.frombuffer(keys.buffers()[1], dtype=np.int32)[keys.offset: keys.offset + n + 1]
    if offsets[-1] - offsets[0] != 16 * n or (np.diff(offsets) != 16).any():
        raise bad
    raw = np.frombuffer(keys.buffers()[2], dtype=np.uint8)[offsets[0]: offsets[-1]]
    digits = _HEX[raw.reshape(n, 16)]
    if (digits > 15).any():
        raise bad
    packed = np.ascontiguousarray((digits[:, 0::2] << 4) | digits[:, 1::2])  # 8 bytes a key, big end first
    return packed.view(">u8").ravel().astype(np.uint64)


def key_partitions(keys: Any, nparts: int) -> np.ndarray:
    """The de-duplication partition (``0 <= p < nparts``) of each dedup key: its first 8 hex
    digits modulo ``nparts`` (keys are hashes, so already uniformly spread); every row of one
    key lands in one partition."""
    return ((key_values(keys) >> np.uint64(32)) % np.uint64(nparts)).astype(np.int64)


_HEX = np.full(256, 255, dtype=np.uint8)  # ASCII code -> hex digit value (255: not a hex digit)
_HEX[np.frombuffer(b"0123456789abcdef", dtype=np.uint8)] = np.arange(16)
_HEX[np.frombuffer(b"ABCDEF", dtype=np.uint8)] = np.arange(10, 16)


def rejects_view(df: pd.DataFrame) -> pd.DataFrame:
    """The rejects output of a prepared batch: ids, raw values as strings, reason, stage."""
    r = df[df["reject_reason"].notna()]
    return pd.DataFrame({
        "id": r["id"].astype(str),
        "raw_text": r["raw_text"].astype(str),
        "raw_label": r["raw_label"].astype(str),
        "reject_reason": r["reject_reason"].astype(str),
        "stage": "clean",
    })


def kept_view(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["reject_reason"].isna()].drop(columns=list(DROPPED_COLS), errors="ignore")


def dedup_view(df: pd.DataFrame | pa.Table) -> pd.DataFrame | pa.Table:
    """What the key-only de-duplication pass needs of a prepared batch's kept rows: the
    dedup key, row ref and id (which row wins), and split, label and membership pattern (the
    audit and balance counts of the surviving rows). No text is shuffled.

    An Arrow table gives an Arrow table (the job's prepare tasks: 0.09 s per 250k rows, where
    the pandas path took 0.16 s)."""
    if isinstance(df, pa.Table):
        k = df.filter(pac.is_null(df["reject_reason"])) if df["reject_reason"].null_count < df.num_rows else df
        return pa.table({"dedup_key": k["dedup_key"].cast(pa.string()), "row_ref": k["row_ref"].cast(pa.string()),
                         "id": k["id"].cast(pa.string()), "split": k["split"].cast(pa.string()),
                         "label": k["label"].cast(pa.int64()), "pattern": pattern_array(k["groups"].combine_chunks())})
    k = df[df["reject_reason"].isna()]
    return pd.DataFrame({"dedup_key": k["dedup_key"].astype(str).values, "row_ref": k["row_ref"].astype(str).values,
                         "id": k["id"].astype(str).values, "split": k["split"].astype(str).values,
                         "label": k["label"].astype("int64").values, "pattern": pattern_strings(k["groups"])})


def dedup_counts(view: pd.DataFrame | pa.Table) -> pd.DataFrame:
    """On a block holding every row of its dedup keys (the job partitions by key): the rows
    to drop (all but the smallest id of each key, as :func:`dedup_block` keeps) and the
    pattern counts of the rows kept, as one frame with a ``kind`` column:

    * ``drop``: ``ref`` = ``row_ref`` of a dropped row;
    * ``count``: ``split``, ``pattern``, ``label``, ``n`` over the kept rows;
    * ``collision``: two rows share a row ref, so refs cannot tell them apart.

    ``view``: :func:`dedup_view` rows, as pandas or Arrow. Keys are grouped as numbers
    (:func:`key_values`); only the rows of keys seen more than once (a few percent) are sorted
    by id, in Arrow. Rows sharing a ref share their key (:func:`row_refs`), so comparing refs
    within those groups finds every collision.
    """
    t = view if isinstance(view, pa.Table) else pa.Table.from_pandas(view, preserve_index=False)
    n = t.num_rows
    if n == 0:
        return _typed(pd.DataFrame())
    keys = key_values(t["dedup_key"])
    order = np.argsort(keys)  # the order within a key does not matter: those rows are sorted below
    ks = keys[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = ks[1:] != ks[:-1]
    group = np.cumsum(starts) - 1
    rows = order[np.bincount(group)[group] > 1]  # the rows of keys seen more than once
    kept = np.ones(n, dtype=bool)
    parts = []
    if len(rows):
        sub = pa.table({"k": pa.array(keys[rows]), "id": t["id"].take(rows).cast(pa.string()),
                        "ref": t["row_ref"].take(rows).cast(pa.string()), "row": pa.array(rows)})
        sub = sub.take(pac.sort_indices(sub, sort_keys=[("k", "ascending"), ("id", "ascending"),
                                                        ("ref", "ascending")]))
        sk = sub["k"].to_numpy()
        first = np.ones(len(sk), dtype=bool)
        first[1:] = sk[1:] != sk[:-1]
        refs = sub["ref"].to_numpy(zero_copy_only=False)
        same = np.zeros(len(sk), dtype=bool)
        same[1:] = ~first[1:] & (refs[1:] == refs[:-1])
        if same.any():
            parts.append(pd.DataFrame({"kind": ["collision"], "ref": [str(refs[np.flatnonzero(same)[0]])]}))
        kept[sub["row"].to_numpy()[~first]] = False
        parts.append(pd.DataFrame({"kind": "drop", "ref": refs[~first]}))
    counts = (t.select(["split", "pattern", "label"]).filter(pa.array(kept))
              .group_by(["split", "pattern", "label"]).aggregate([([], "count_all")])
              .to_pandas().rename(columns={"count_all": "n"}))
    parts.append(counts.assign(kind="count"))
    return _typed(pd.concat(parts, ignore_index=True))


def _typed(out: pd.DataFrame) -> pd.DataFrame:
    out = out.reindex(columns=["kind", "ref", "split", "pattern", "label", "n"])
    for c in ("kind", "ref", "split", "pattern"):
        out[c] = out[c].astype("string")
    for c in ("label", "n"):
        out[c] = out[c].astype("Int64")
    return out


DROPPED_COLS = ("reject_reason", "raw_text", "raw_label")  # what kept rows no longer need


def keep_table(table: pa.Table, *, drop_refs: Any = None) -> pa.Table:
    """A prepared table's kept rows (no reject reason) minus the duplicates named by their
    ``row_ref``, without the reject columns. In Arrow: the rows are filtered before any
    pandas conversion, and the set of refs is hashed in C++ (pandas took 3 s for a 250k-row
    batch against 280k refs).

    ``drop_refs``: a sequence or Arrow array of row refs.
    """
    mask = None
    if "reject_reason" in table.column_names:
        mask = pac.is_null(table["reject_reason"])
    if drop_refs is not None and len(drop_refs) and table.num_rows:
        refs = drop_refs if isinstance(drop_refs, pa.Array) else pa.array(list(drop_refs), type=pa.string())
        fresh = pac.invert(pac.is_in(table["row_ref"].cast(pa.string()), value_set=refs.cast(pa.string())))
        mask = fresh if mask is None else pac.and_(mask, fresh)
    if mask is not None:
        table = table.filter(mask)
    return table.drop_columns([c for c in DROPPED_COLS if c in table.column_names])


def dedup_block(df: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per ``dedup_key`` (the smallest id, so the choice is deterministic).

    Correct on a block only when every row of a key is in the block: the job hash-partitions
    by ``dedup_key`` first.
    """
    if df.empty:
        return df
    return (df.sort_values(["dedup_key", "id"], kind="mergesort")
              .drop_duplicates("dedup_key", keep="first")
              .reset_index(drop=True))


def pattern_array(lists: pa.Array) -> pa.Array:
    """Each row's membership pattern from an Arrow ``list<string>`` array: its sorted groups
    joined by ``+`` (``""`` for none or null). Joined in Arrow; only rows whose groups are out
    of order (none, from the annotator, which sorts them) are sorted in Python."""
    joined = pac.binary_join(lists, "+").fill_null("")
    flat = pac.list_flatten(lists)
    if len(flat) < 2:
        return joined.cast(pa.string())
    parents = pac.list_parent_indices(lists).to_numpy()
    down = pac.less(flat.slice(1), flat.slice(0, len(flat) - 1)).fill_null(False).to_numpy(zero_copy_only=False)
    unsorted = np.unique(parents[1:][(parents[1:] == parents[:-1]) & down])
    if len(unsorted) == 0:
        return joined.cast(pa.string())
    out = joined.to_numpy(zero_copy_only=False).astype(object)
    for i in unsorted:
        out[i] = "+".join(sorted(lists[int(i)].as_py()))
    return pa.array(out, type=pa.string())


def pattern_strings(groups: pd.Series) -> list[str]:
    """Each row's membership pattern: its sorted groups joined by ``+`` (``""`` for none).

    Arrow-backed list columns (what Ray Data hands over) go through :func:`pattern_array`.
    """
    chunked = arrow_string_lists(groups)
    if chunked is not None:
        lists = chunked.combine_chunks() if chunked.num_chunks != 1 else chunked.chunk(0)
        return pattern_array(lists).to_numpy(zero_copy_only=False).tolist()
    return ["+".join(sorted(str(x) for x in g)) if g is not None else "" for g in groups]


def pattern_counts(df: pd.DataFrame) -> pd.DataFrame:
    """Rows per (split, membership pattern, label) in one batch; mergeable by summing ``n``.

    A pattern is the sorted set of groups a row mentions joined by ``+`` (``""`` for none).
    Both the audit (per-group counts, overlapping) and the balance cells (one key per row,
    under any keying rule) are functions of these counts, so one pass over the corpus serves both.
    """
    pattern = pattern_strings(df["groups"])
    return (pd.DataFrame({"split": df["split"].astype(str).values, "pattern": pattern,
                          "label": df["label"].astype("int64").values})
            .groupby(["split", "pattern", "label"], as_index=False).size().rename(columns={"size": "n"}))


def merge_pattern_counts(frames: list[pd.DataFrame]) -> pd.DataFrame:
    cat = pd.concat([f for f in frames if len(f)], ignore_index=True)
    return cat.groupby(["split", "pattern", "label"], as_index=False)["n"].sum()


def audit_from_patterns(pc: pd.DataFrame, *, group_names: list[str]) -> pd.DataFrame:
    """``debias.corpus.audit.audit_counts`` over the whole corpus, from pattern counts."""
    by = pc.groupby(["pattern", "label"])["n"].sum().unstack(fill_value=0).reindex(columns=[0, 1], fill_value=0)
    patterns = [p.split("+") if p else [] for p in by.index]
    member = np.array([[g in set(p) for g in group_names] for p in patterns], dtype=bool).reshape(
        len(patterns), len(group_names))  # (patterns, groups)
    neg, pos = by[0].to_numpy(np.int64), by[1].to_numpy(np.int64)
    none = ~member.any(axis=1)
    return pd.DataFrame({
        "group": list(group_names) + [audit.NONE_GROUP, audit.ALL_GROUP],
        "n_neg": np.concatenate([member.T.astype(np.int64) @ neg, [neg[none].sum(), neg.sum()]]).astype(np.int64),
        "n_pos": np.concatenate([member.T.astype(np.int64) @ pos, [pos[none].sum(), pos.sum()]]).astype(np.int64),
    })


def cells_from_patterns(pc: pd.DataFrame, *, intersectional: bool,
                        group_counts: dict[str, int] | None) -> pd.DataFrame:
    """``debias.corpus.balance.cell_counts`` over the training rows, from pattern counts."""
    train = pc[pc["split"] == "train"].groupby(["pattern", "label"], as_index=False)["n"].sum()
    if train.empty:
        return pd.DataFrame({"cell": pd.Series(dtype=str), "label": pd.Series(dtype="int64"),
                             "n": pd.Series(dtype="int64")})
    frame = pd.DataFrame({"groups": [p.split("+") if p else [] for p in train["pattern"]]})
    cells = balance.cell_keys(frame, intersectional=intersectional, group_counts=group_counts)
    out = pd.DataFrame({"cell": cells.values, "label": train["label"].values, "n": train["n"].values})
    return out.groupby(["cell", "label"], as_index=False)["n"].sum()


def train_rows(df: pd.DataFrame) -> pd.DataFrame:
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
        train = balance.apply_resample(train, plan=plan["resample"], thresholds=plan["thresholds"])
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
    lex = cached_lexicon(tuple(ann["axes"]), ann["lexicon_dir"])
    table = cached_swaps(tuple(aug["axes"]), aug["swap_dir"])
    target = df[df["split"] == "train"] if only_train else df
    other = df[df["split"] != "train"] if only_train else df.iloc[0:0]
    augmented = counterfactual_batch(target.drop(columns=["pair_id", "is_augmented"]), table=table, lexicon=lex,
                                     mode=aug["mode"], probability=aug["probability"], seed=cfg["seed"])
    return pd.concat([augmented, other], ignore_index=True)


def plan_from_counts(cells: pd.DataFrame, *, cfg: dict[str, Any],
                     group_counts: dict[str, int] | None) -> dict[str, Any]:
    """Weights or a resampling plan from the merged training cell counts (driver side, small)."""
    bal = cfg["balance"]
    plan: dict[str, Any] = {"cell_counts": cells, "group_counts": group_counts}
    if bal["strategy"] == "reweight":
        plan["weights"] = balance.compute_weights(cells, method=bal["weighting"])
    elif bal["strategy"] in ("oversample", "undersample", "hybrid"):
        targets = balance.target_counts(cells, strategy=bal["strategy"])
        plan["resample"] = balance.resample_plan(cells, targets, seed=cfg["seed"],
                                                 intersectional=bal["intersectional"], group_counts=group_counts)
    return plan


def run_local(df: pd.DataFrame, *, cfg: dict[str, Any],
              timings: dict[str, float] | None = None) -> dict[str, Any]:
    """All stages in one process on one frame (the plain alternative, and a test oracle).

    ``timings``, if given, receives the seconds spent in each phase (same phases as the job).
    """
    t = timings if timings is not None else {}
    freeze_startup_heap()  # as the job's tasks do
    t0 = time.perf_counter()
    prepared = prepare_batch(df, cfg=cfg)
    t["read_clean_annotate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    rejects = rejects_view(prepared)
    kept = kept_view(prepared)
    deduped = dedup_block(kept) if cfg["clean"]["dedup"] else kept.reset_index(drop=True)
    t["rejects_dedup"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    ann = cfg["annotate"]
    lex = cached_lexicon(tuple(ann["axes"]), ann["lexicon_dir"])
    group_names = sorted(set(lex.group_names) | set(cfg["data"]["identity"]["columns"]))
    pc = pattern_counts(deduped)
    audit_counts = audit_from_patterns(pc, group_names=group_names)
    gcounts = audit.group_counts(audit_counts)
    cells = cells_from_patterns(pc, intersectional=cfg["balance"]["intersectional"], group_counts=gcounts)
    plan = plan_from_counts(cells, cfg=cfg, group_counts=gcounts)
    if "resample" in plan:
        train = train_rows(deduped)
        hist = balance.u_histogram(train, cells=plan["resample"])
        bvals = balance.boundary_values(train, cells=plan["resample"],
                                        bin_index_per_cell=balance.boundary_bins(plan["resample"], hist))
        plan["thresholds"] = balance.thresholds(plan["resample"], hist, bvals)
    t["audit_plan"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    final = finalize_batch(deduped, cfg=cfg, plan=plan)
    t["balance_augment_write"] = time.perf_counter() - t0
    return {"rejects": rejects, "output": final, "audit_counts": audit_counts, "plan": plan,
            "n_read": len(df), "n_rejected": len(rejects), "n_duplicates": len(kept) - len(deduped)}
