"""Text cleaning and label normalisation for one batch of raw rows.

``clean_batch`` is the first stage after reading: it never drops a row. Every input row comes
back with a cleaned ``text``, a class-id ``label`` (nullable; 0/1 when binary), an exact de-duplication key and a
``reject_reason`` (None for rows to keep), so the caller can route rejects and count every row.

Speed: the text steps run as pyarrow compute kernels over the whole column (RE2 regexes, C++
Unicode normalisation), not a Python loop per row. Only the steps pyarrow cannot express run in
Python, and only on the rows that need them (HTML entities, non-str input cells), plus one
hash per row for the de-dup key.

Order of the text steps (each can be switched off in ``CleanConfig``):
NFKC -> HTML entities unescaped, tags removed -> control characters removed -> (lowercase) ->
PII masked (:mod:`debias.corpus.pii`: e-mail, URL, @user and u/user in RE2; then IBAN, card,
SSN, NINO, MAC, IP and phone, checksums checked, on the rows with digits) -> whitespace
collapsed and trimmed -> length limits. Masking runs after lowercasing so the mask tokens stay
upper case.
"""

from __future__ import annotations

import hashlib
import html
import math
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from debias.config import CleanConfig
from debias.corpus.pii import KINDS, RE2_MASKS, mask_digit_kinds, placeholder_counts

__all__ = ["clean_batch", "clean_text", "clean_texts", "dedup_key", "REJECT_REASONS"]

# The closed set of reason codes. No raw value goes into a reason: the manifest and the report
# count reasons, and they must hold no row content (the rejects files keep the raw rows).
REJECT_REASONS = (
    "null_text", "undecodable_text", "empty_text", "text_too_short", "text_too_long",
    "null_text_pair", "undecodable_text_pair", "empty_text_pair", "text_pair_too_long",
    "null_label", "unknown_label",
)

# The patterns below are written so that both RE2 (pyarrow) and Python's ``re`` read them the
# same way: no look-around, ``\xhh`` escapes for Latin-1, literal characters above U+00FF.

# HTML: comments, <script>/<style> blocks with their content, then any tag. A tag must start with
# a letter (or "/" + letter) so "i <3 u" and "a < b" survive.
_HTML_BLOCKS = r"(?is)<!--.*?-->|<script\b.*?</script\s*>|<style\b.*?</style\s*>"
_HTML_TAG = r"</?[A-Za-z][A-Za-z0-9:-]*(?:\s[^<>]*)?/?>"
_HTML_ENTITY = r"&(?:#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});?"

# C0/C1 controls except the whitespace ones (\t \n \f \r, NEL), plus zero-width / BOM chars.
_CONTROL = "[\\x00-\\x08\\x0b\\x0e-\\x1f\\x7f-\\x84\\x86-\\x9f\u200b\u2060\ufeff\ufffe]"
# ASCII whitespace plus the Unicode spaces that NFKC does not fold to " " (line separators etc.).
_SPACE = "[\\s\\x85\\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+"

def _config(params: dict[str, Any] | CleanConfig | None) -> CleanConfig:
    if isinstance(params, CleanConfig):
        return params
    if params is None:
        return CleanConfig()
    if not isinstance(params, dict):
        raise TypeError(f"params must be a dict (CleanConfig().model_dump()); found {type(params).__name__}")
    return CleanConfig.model_validate(params)


def _coerce_text(values: pd.Series) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """Any column -> (utf8 array, null mask, undecodable mask).

    Bytes are decoded as strict UTF-8; cells that fail are decoded with U+FFFD replacements
    (so the reject shows what was there) and flagged. Numbers become their ``str``.
    """
    n = len(values)
    undecodable = np.zeros(n, dtype=bool)
    if pd.api.types.is_string_dtype(values.dtype) and values.dtype != object:
        arr = pa.array(values, type=pa.large_string(), from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):  # Arrow-backed pandas strings read from several row groups
            arr = arr.combine_chunks()
        arr = arr.cast(pa.string()) if arr.nbytes < 2**31 - 1 else arr
        return arr, np.asarray(arr.is_null(), dtype=bool), undecodable
    out: list[str | None] = [None] * n
    for i, v in enumerate(values.tolist()):
        if v is None or v is pd.NA or v is pd.NaT:
            continue
        if isinstance(v, str):
            out[i] = v
        elif isinstance(v, (bytes, bytearray, memoryview)):
            b = bytes(v)
            try:
                out[i] = b.decode("utf-8")
            except UnicodeDecodeError:
                out[i] = b.decode("utf-8", errors="replace")
                undecodable[i] = True
        elif isinstance(v, float) and math.isnan(v):
            continue
        else:
            out[i] = str(v)
    try:
        arr = pa.array(out, type=pa.string())
    except (UnicodeEncodeError, pa.ArrowException):
        # Lone surrogates (e.g. text read with errors="surrogateescape") cannot become UTF-8.
        for i, s in enumerate(out):
            if s is None:
                continue
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:
                out[i] = s.encode("utf-8", errors="replace").decode("utf-8")
                undecodable[i] = True
        arr = pa.array(out, type=pa.string())
    return arr, np.asarray(arr.is_null(), dtype=bool), undecodable


def _unescape_entities(arr: pa.Array) -> pa.Array:
    # Python's html.unescape knows every HTML5 entity; run it only where an entity may be.
    has = pc.fill_null(pc.match_substring_regex(arr, _HTML_ENTITY), False)
    idx = np.flatnonzero(np.asarray(has, dtype=bool))
    if len(idx) == 0:
        return arr
    fixed = [html.unescape(s) for s in arr.take(pa.array(idx)).to_pylist()]
    return pc.replace_with_mask(arr, has, pa.array(fixed, type=arr.type))


def _clean_array(arr: pa.Array, cfg: CleanConfig) -> tuple[pa.Array, dict[str, int]]:
    """The text steps on a utf8 array (nulls stay null), and the PII masked per kind."""
    if cfg.unicode_nfkc:
        arr = pc.utf8_normalize(arr, form="NFKC")
    if cfg.strip_html:
        arr = _unescape_entities(arr)
        arr = pc.replace_substring_regex(arr, _HTML_BLOCKS, " ")
        arr = pc.replace_substring_regex(arr, _HTML_TAG, " ")
    arr = pc.replace_substring_regex(arr, _CONTROL, "")
    if cfg.lowercase:
        arr = pc.utf8_lower(arr)
    arr, counts = _mask(arr, cfg)
    arr = pc.replace_substring_regex(arr, _SPACE, " ")
    return pc.utf8_trim(arr, characters=" "), counts


def _mask(arr: pa.Array, cfg: CleanConfig) -> tuple[pa.Array, dict[str, int]]:
    """The PII steps (:mod:`debias.corpus.pii`) and the matches masked per kind switched on."""
    on = frozenset(k for k, (flag, _) in KINDS.items() if getattr(cfg, flag))
    if not on:
        return arr, {}
    before = placeholder_counts(arr, on)
    for kind, pattern, repl in RE2_MASKS:
        if kind in on:
            arr = pc.replace_substring_regex(arr, pattern, repl)
    arr = mask_digit_kinds(arr, kinds=on)
    after = placeholder_counts(arr, on)
    return arr, {k: after[k] - before[k] for k in KINDS if k in on}


def dedup_key(texts: list[str | None]) -> list[str]:
    """16-hex-digit blake2b of each text casefolded with whitespace collapsed (None -> "")."""
    out = []
    for s in texts:
        norm = " ".join((s or "").casefold().split())
        out.append(hashlib.blake2b(norm.encode("utf-8"), digest_size=8).hexdigest())
    return out




def _label_key(v: Any) -> str | None:
    """Raw label -> lookup string: 1.0 -> "1", True -> "true", b"x" -> "x"; None/NaN -> None."""
    if v is None or v is pd.NA:
        return None
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return None
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", errors="replace").strip()
    return str(v).strip()


def default_label_map(class_names: list[str] | tuple[str, ...] | None = None) -> dict[str, int]:
    """The labels read without a ``label_map``: class ids as text ("0".."K-1"), the class names
    (matched case-insensitively), and true/false when binary."""
    names = list(class_names) if class_names else ["0", "1"]
    out = {str(i): i for i in range(len(names))}
    if len(names) == 2:
        out.update({"true": 1, "false": 0})
    for i, n in enumerate(names):
        out.setdefault(str(n).strip().casefold(), i)
    return out


def _normalise_labels(values: pd.Series, label_map: dict[str, int],
                      class_names: list[str] | tuple[str, ...] | None = None) -> tuple[pd.Series, list[str | None]]:
    exact = {str(k).strip(): int(x) for k, x in label_map.items()}
    folded = {k.casefold(): x for k, x in exact.items()}
    if not exact:
        exact, folded = {}, default_label_map(class_names)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    mapped: list[int | None] = []
    reasons: list[str | None] = []
    for u in list(uniques):
        key = _label_key(u)
        if key is None:
            mapped.append(None)
            reasons.append("null_label")
            continue
        y = exact.get(key, folded.get(key.casefold()))
        mapped.append(y)
        reasons.append(None if y is not None else "unknown_label")
    mapped.append(None)  # code -1: missing
    reasons.append("null_label")
    codes = np.where(codes < 0, len(uniques), codes)
    label = pd.array([mapped[c] for c in codes], dtype="Int64")
    return pd.Series(label, index=values.index), [reasons[c] for c in codes]


def _score_labels(values: pd.Series, threshold: float) -> tuple[pd.Series, pd.Series, list[str | None]]:
    """Score labels: (class 0/1 where score >= threshold, the score as float64, reasons). A null is
    ``null_label``; text that is not a finite number is ``unknown_label``."""
    raw = values.to_numpy(dtype=object)
    null = np.array([_label_key(v) is None for v in raw], dtype=bool)
    score = pd.to_numeric(pd.Series(raw, index=values.index).map(
        lambda v: v.decode("utf-8", "replace") if isinstance(v, (bytes, bytearray)) else v), errors="coerce")
    score = score.astype("float64")
    ok = np.isfinite(score.to_numpy())
    reasons = ["null_label" if n else None if good else "unknown_label" for n, good in zip(null, ok, strict=True)]
    label = pd.array([int(v >= threshold) if good else None for v, good in zip(score.to_numpy(), ok, strict=True)],
                     dtype="Int64")
    return pd.Series(label, index=values.index), score.where(ok), reasons


def _parse_labels(values: pd.Series, *, label_map: dict[str, int], class_names: list[str] | None,
                  label_threshold: float | None) -> tuple[pd.Series, pd.Series | None, list[str | None]]:
    """(class ids, the raw score or None, reasons): score labels with ``label_threshold``, else
    mapped labels."""
    if label_threshold is not None:
        return _score_labels(values, float(label_threshold))
    k = len(class_names) if class_names else 2
    label, reasons = _normalise_labels(values, _check_label_map(label_map, k), class_names)
    return label, None, reasons


def check_labels(values: pd.Series, *, label_map: dict[str, int], class_names: list[str] | None = None,
                 label_threshold: float | None = None, label_col: str = "label",
                 max_unknown_share: float = 0.5) -> dict[str, int]:
    """Preflight of a sample of raw labels: the count of each class id found, or a ValueError.

    Fails when most non-null labels of the sample map to no class (``max_unknown_share``: a
    wrong ``label_map``, ``class_names`` or ``label_threshold``, not a few bad rows, which go to
    rejects), naming the distinct values found (label values, the classes' vocabulary, never a
    text) and what would have read them.
    """
    label, _, reasons = _parse_labels(values, label_map=label_map, class_names=class_names,
                                      label_threshold=label_threshold)
    nonnull = [r != "null_label" for r in reasons]
    unknown = [r == "unknown_label" for r in reasons]
    n, bad = sum(nonnull), sum(unknown)
    if n and bad / n > max_unknown_share:
        found = pd.Series([_label_key(v) for v, u in zip(values, unknown, strict=True) if u]).value_counts()
        shown = ", ".join(f"{v!r} ({c:,})" for v, c in found.head(10).items())
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        if label_threshold is not None:
            want = "numbers (data.label_threshold reads the column as a score)"
        elif label_map:
            want = f"the keys of data.label_map ({', '.join(map(repr, sorted(label_map)))})"
        else:
            want = ("class ids 0.." + str(len(class_names or [0, 1]) - 1) + " or data.class_names "
                    f"({', '.join(map(repr, class_names or []))}); set data.label_map for other values")
        raise ValueError(f"labels: {bad:,} of the first {n:,} non-null values of column {label_col!r} map to no "
                         f"class: {shown}{more}. Expected {want}")
    ids = pd.Series(label.dropna().astype("int64")).value_counts().sort_index()
    return {int(k): int(v) for k, v in ids.items()}


def clean_batch(df: pd.DataFrame, *, text_col: str, label_col: str, label_map: dict[str, int],
                params: dict[str, Any] | CleanConfig | None, class_names: list[str] | None = None,
                label_threshold: float | None = None, pair_col: str | None = None) -> pd.DataFrame:
    """Clean texts and normalise labels of one batch; never drops a row.

    Parameters
    ----------
    df : the raw batch. ``text_col`` may hold str, bytes, numbers, None or NaN.
    text_col, label_col : names of the source columns.
    label_map : raw label (as str; 1.0 reads as "1", booleans as "true"/"false") -> class id
        0..K-1. Keys are matched exactly, then case-insensitively. Empty:
        :func:`default_label_map` (class ids, class names, and true/false when binary).
    params : ``CleanConfig().model_dump()`` (or a ``CleanConfig``).
    class_names : the K class names (default two); label ids must lie in 0..K-1.
    label_threshold : score labels: the label column holds numbers, the class is ``score >=
        label_threshold`` and the score is kept as ``label_score`` (float64, NaN where rejected).

    Returns
    -------
    pandas.DataFrame
        A new frame: every input column plus ``text`` (cleaned str; "" where the source was
        null), ``label`` (Int64, null where unmappable), ``dedup_key`` (16 hex digits of the
        casefolded, whitespace-collapsed cleaned text) and ``reject_reason`` (string dtype: <NA>
        to keep; else the first of ``null_text``, ``undecodable_text``, ``empty_text``, ``text_too_short``,
        ``text_too_long``, ``null_label``, ``unknown_label``: the closed set
        ``REJECT_REASONS``, never a raw value). ``empty_text`` is rejected whatever
        ``min_chars`` says. ``out.attrs["pii_masked"]`` holds the matches masked per kind
        switched on (``{"email": n, ...}``, summed over the batch; mergeable by adding).

    Raises
    ------
    ValueError
        If ``text_col`` or ``label_col`` is missing.
    """
    cfg = _config(params)
    roles = (("text_col", text_col), ("label_col", label_col), *((("text_pair_col", pair_col),) if pair_col else ()))
    for role, col in roles:
        if col not in df.columns:
            raise ValueError(f"missing {role} column {col!r}; columns present: {', '.join(map(str, df.columns))}")
    arr, null, undecodable = _coerce_text(df[text_col])
    cleaned, masked = _clean_array(arr, cfg)
    lengths = np.asarray(pc.fill_null(pc.utf8_length(cleaned), 0), dtype=np.int64)
    texts = pc.fill_null(cleaned, "").to_pylist()
    label, score, label_reasons = _parse_labels(df[label_col], label_map=label_map, class_names=class_names,
                                                label_threshold=label_threshold)

    # Precedence: the text's own problems first, then the second text's, then the label's
    # (assigned lowest first).
    reasons = np.array(label_reasons, dtype=object)
    pairs: list[str] | None = None
    if pair_col:
        p_arr, p_null, p_undecodable = _coerce_text(df[pair_col])
        p_cleaned, p_masked = _clean_array(p_arr, cfg)
        p_lengths = np.asarray(pc.fill_null(pc.utf8_length(p_cleaned), 0), dtype=np.int64)
        pairs = pc.fill_null(p_cleaned, "").to_pylist()
        masked = {k: masked.get(k, 0) + p_masked.get(k, 0) for k in sorted(set(masked) | set(p_masked))}
        reasons[p_lengths > cfg.max_chars] = "text_pair_too_long"
        reasons[p_lengths == 0] = "empty_text_pair"
        reasons[p_undecodable] = "undecodable_text_pair"
        reasons[p_null] = "null_text_pair"
    reasons[lengths > cfg.max_chars] = "text_too_long"
    reasons[lengths < cfg.min_chars] = "text_too_short"
    reasons[lengths == 0] = "empty_text"
    reasons[undecodable] = "undecodable_text"
    reasons[null] = "null_text"

    out = df.copy()
    out["text"] = pd.Series(texts, index=df.index, dtype="string")
    out["label"] = label
    if score is not None:
        out["label_score"] = score
    if pairs is not None:
        out["text_pair"] = pd.Series(pairs, index=df.index, dtype="string")
    keyed = texts if pairs is None else [f"{t}\x00{p}" for t, p in zip(texts, pairs, strict=True)]
    out["dedup_key"] = pd.Series(dedup_key(keyed), index=df.index, dtype="string")
    out["reject_reason"] = pd.Series(reasons.tolist(), index=df.index, dtype="string")
    out.attrs["pii_masked"] = masked
    return out


def _check_label_map(label_map: dict[str, int] | None, n_classes: int = 2) -> dict[str, int]:
    if label_map is None:
        return {}
    if not isinstance(label_map, dict):
        raise TypeError(f"label_map must be a dict of raw label -> class id; found {type(label_map).__name__}")
    bad = {k: v for k, v in label_map.items() if not isinstance(v, (int, np.integer)) or isinstance(v, bool)
           or not 0 <= v < n_classes}
    if bad:
        raise ValueError(f"label_map values must be class ids 0..{n_classes - 1}; found {bad}")
    return label_map


def clean_texts(texts: list[str], *, params: dict[str, Any] | CleanConfig | None = None) -> list[str]:
    """Clean many single texts (serving); the same steps as ``clean_batch``, no length limits."""
    cfg = _config(params)
    arr, _, _ = _coerce_text(pd.Series(list(texts), dtype=object))
    return pc.fill_null(_clean_array(arr, cfg)[0], "").to_pylist()


def clean_text(s: str, *, params: dict[str, Any] | CleanConfig | None = None) -> str:
    """Clean one text with the steps of ``clean_batch`` (no length limits, no rejects)."""
    if not isinstance(s, str):
        raise TypeError(f"clean_text expects a str; found {type(s).__name__}")
    return clean_texts([s], params=params)[0]
