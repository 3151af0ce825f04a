"""Counterfactual data augmentation: rewrite a text as if it were about another identity group.

Swap lists live in ``debias/identity/lexicons/swaps/<axis>.yaml``::

    axis: religion
    groups: [christian, muslim, jewish, ...]
    words: [[christian, muslim, jewish, ...], ...]  # one row per slot, aligned with groups
    nouns: [[church, mosque, synagogue, ...], ...]  # also swapped in the plural
    names: [[john, mary], ...]                       # only where the text capitalises them
    keep: [white house, ...]                         # phrases left as they are

``~`` in a row means "no counterpart": that word is left unchanged for that target.

A rewrite is a mapping ``source group -> target group`` applied in ONE regex pass, so swaps are
simultaneous (he -> she and she -> he in the same sentence do not undo each other). The gender
swap (Lu et al. 2019, "Gender Bias in Neural NLP", counterfactual data augmentation; names as in
Hall Maudslay et al. 2019, "It's All in the Name") maps male <-> female both ways. Axes with more
groups use a random cyclic permutation of the axis's groups (deterministic per row and seed), so
every mentioned group moves and no two mentioned groups collapse into one.

PRONOUN HEURISTIC. English "her" is both the object ("saw her") and the possessive determiner
("her book"), so female -> male needs the next word: "her" followed by a word that cannot start
a noun phrase (punctuation, end of text, or a function word / common verb / adverb from
``_NOT_NOUN_START``: "her a book", "her to go", "her yesterday") becomes "him"; otherwise ("her
own car", "her book") it becomes "his". The same test maps "his" to "her" (before a noun) or
"hers" (standalone: "the car is his."), "him" -> "her", "hers" -> "his". The swap is therefore an
involution except where the heuristic misreads "her" (e.g. "gave her flowers" -> "gave his
flowers").

Case is preserved per match: lower -> lower, Title -> Title (each word of a Title multi-word
term), UPPER -> UPPER; hyphens between the words of a multi-word term are kept.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from debias.identity.lexicon import (
    Lexicon,
    _packaged_dir,
    compile_terms,
    normalise_match,
    pluralize,
    prefilter_pattern,
    read_yaml,
)
from debias.schema import group_name, is_group_column

__all__ = ["SwapTable", "available_swap_axes", "counterfactual_batch", "counterfactual_variants",
           "load_swaps", "rewrite", "swap_text"]

_SWAP_SHAPE = ("a mapping with 'axis: <name>', 'groups: [g1, g2, ...]' and rows under 'words', "
               "'nouns' or 'names' (each a list with one term or ~ per group), optional 'keep: [...]'")

_PRONOUNS = {"his", "him", "her", "hers"}
# Words after which "her"/"his" cannot be a possessive determiner (see PRONOUN HEURISTIC).
_NOT_NOUN_START = frozenset("""
a an the this that these those my your his her its our their some any every each no all both
either neither another such what which whose who whom whoever where when why how
to in on at for with from by about of into onto over under after before up down out off away back
through around across along against among between behind beyond during except inside near past
since toward towards until upon via within without like as than
and or but nor so because if while although though unless whether yet then
i you he she it we they me him us them myself yourself himself herself itself ourselves themselves
is was are were be been being am has have had do does did will would can could should shall may
might must 's 're 've 'd 'll not n't
too very again now here there today tonight yesterday tomorrow anymore already still ever never
always just much more most less enough well better best badly alone together first last either
go goes went come came know knew see saw feel felt get got make made take took say said tell told
think thought want need win leave stay try help keep sleep walk talk eat run play cry die fall
speak understand believe hear heard love hate like hit kill call meet be
""".split())


@dataclass
class SwapTable:
    """Aligned swap rows of some axes (see the module docstring for the file format).

    Attributes
    ----------
    groups : axis -> its groups, in file order.
    rows : axis -> list of rows, each ``{group: word or None}``.
    entries : lower-case word -> ``[(axis, group, row index), ...]`` in file order.
    names : words that are first names (swapped only when capitalised).
    keep : phrases matched but never rewritten.
    prefilter : an RE2 pattern (pyarrow) matching at least every lower-cased text ``pattern``
        matches; batches use it to skip texts with nothing to swap without running Python's regex.
    """

    groups: dict[str, list[str]]
    rows: dict[str, list[dict[str, str | None]]]
    entries: dict[str, list[tuple[str, str, int]]]
    names: frozenset[str]
    keep: frozenset[str]
    pattern: re.Pattern[str] = field(repr=False)
    prefilter: str | None = field(default=None, repr=False)

    @property
    def axes(self) -> list[str]:
        return list(self.groups)

    @property
    def axis_of(self) -> dict[str, str]:
        return {g: a for a, gs in self.groups.items() for g in gs}

    def vocabulary(self, axis: str, group: str) -> list[str]:
        """Every word of ``group`` in the table (lower case)."""
        return sorted({w for w, es in self.entries.items() for (a, g, _) in es if a == axis and g == group})


def _swap_dir(swap_dir: str | Path | None) -> Any:
    if swap_dir is None:
        return _packaged_dir() / "swaps"
    p = Path(swap_dir)
    if not p.is_dir():
        raise ValueError(f"swap_dir {str(p)!r} is not a folder")
    return p


def available_swap_axes(swap_dir: str | Path | None = None) -> list[str]:
    """Axes with a swap file in ``swap_dir`` (default: the packaged swap lists)."""
    return sorted(p.name[:-5] for p in _swap_dir(swap_dir).iterdir() if p.name.endswith(".yaml"))


def _term(raw: Any, path: Any, where: str) -> str | None:
    if raw is None:
        return None
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError(f"{path}: {where}: expected a term or ~; found {raw!r}")
    return " ".join(raw.strip().lower().replace("-", " ").split())


def load_swaps(axes: list[str], swap_dir: str | Path | None = None) -> SwapTable:
    """Load the swap lists of ``axes``.

    Parameters
    ----------
    axes : e.g. ``["gender"]`` or ``["gender", "religion"]``.
    swap_dir : folder of ``<axis>.yaml`` swap files; None reads the packaged ones.

    Raises
    ------
    ValueError
        Unknown axis (listing the available ones); a file that is not valid YAML (file, line) or
        not of the expected shape (file, row, what was expected).
    """
    if isinstance(axes, str) or not isinstance(axes, (list, tuple)):
        raise TypeError(f"axes must be a list of axis names; found {type(axes).__name__}")
    d = _swap_dir(swap_dir)
    available = available_swap_axes(swap_dir)
    missing = [a for a in axes if a not in available]
    if missing:
        raise ValueError(f"no swap list for axis {missing}; available swap axes: {', '.join(available)}")
    groups: dict[str, list[str]] = {}
    rows: dict[str, list[dict[str, str | None]]] = {}
    entries: dict[str, list[tuple[str, str, int]]] = {}
    names: set[str] = set()
    keep: set[str] = set()
    for axis in dict.fromkeys(axes):
        path = d / f"{axis}.yaml"
        doc = read_yaml(path, expected=_SWAP_SHAPE)
        unknown = set(doc) - {"axis", "groups", "words", "nouns", "names", "keep"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}; expected {_SWAP_SHAPE}")
        if doc.get("axis") != axis:
            raise ValueError(f"{path}: expected 'axis: {axis}' (the file name); found axis {doc.get('axis')!r}")
        gs = doc.get("groups")
        if not isinstance(gs, list) or len(gs) < 2 or not all(isinstance(g, str) for g in gs) or len(set(gs)) != len(gs):
            raise ValueError(f"{path}: 'groups' must be a list of at least 2 distinct group names; found {gs!r}")
        clash = [g for g in gs if any(g in other for other in groups.values())]
        if clash:
            raise ValueError(f"{path}: groups {clash} already belong to another axis")
        groups[axis] = list(gs)
        axis_rows: list[dict[str, str | None]] = []
        for section in ("words", "nouns", "names"):
            raw_rows = doc.get(section) or []
            if not isinstance(raw_rows, list):
                raise ValueError(f"{path}: '{section}' must be a list of rows; found {type(raw_rows).__name__}")
            for i, raw in enumerate(raw_rows):
                where = f"{section} row {i + 1}"
                if not isinstance(raw, list) or len(raw) != len(gs):
                    raise ValueError(f"{path}: {where}: expected a list of {len(gs)} terms (one per group "
                                     f"{gs}); found {raw!r}")
                row = {g: _term(t, path, where) for g, t in zip(gs, raw, strict=True)}
                variants = [row]
                if section == "nouns":
                    variants.append({g: pluralize(t) if t else None for g, t in row.items()})
                for r in variants:
                    idx = len(axis_rows)
                    axis_rows.append(r)
                    for g, t in r.items():
                        if t is None:
                            continue
                        if section == "names":
                            names.add(t)
                        lst = entries.setdefault(t, [])
                        if (axis, g) not in [(a, gg) for a, gg, _ in lst]:
                            lst.append((axis, g, idx))
        rows[axis] = axis_rows
        k = doc.get("keep") or []
        if not isinstance(k, list):
            raise ValueError(f"{path}: 'keep' must be a list of phrases; found {type(k).__name__}")
        keep |= {t for t in (_term(x, path, "keep") for x in k) if t}
    if "gender" in groups and {"male", "female"} <= set(groups["gender"]):
        for p in _PRONOUNS:
            entries.setdefault(p, [])
    terms = sorted(set(entries) | keep)
    pattern = compile_terms(terms, ignore_case=True)
    return SwapTable(groups=groups, rows=rows, entries=entries, names=frozenset(names),
                     keep=frozenset(keep), pattern=pattern,
                     prefilter=prefilter_pattern(sorted({t.lower() for t in terms})))


_SPLIT_SEP = re.compile(r"([\s\-]+)")
_NEXT_WORD = re.compile(r"[ \t]*([A-Za-z']+|n't)?")


def _match_case(src: str, target: str) -> str:
    parts = _SPLIT_SEP.split(src)
    words, seps = parts[0::2], parts[1::2]
    tw = target.split(" ")
    if src.isupper() and any(c.isalpha() for c in src):
        tw = [w.upper() for w in tw]
    elif src[:1].isupper():
        if len(words) > 1 and all(w[:1].isupper() for w in words):
            tw = [w[:1].upper() + w[1:] for w in tw]
        else:
            tw[0] = tw[0][:1].upper() + tw[0][1:]
    if len(seps) == len(tw) - 1 and seps:
        out = tw[0]
        for s, w in zip(seps, tw[1:], strict=True):
            out += ("-" if "-" in s else " ") + w
        return out
    return " ".join(tw)


def _noun_follows(text: str, end: int) -> bool:
    m = _NEXT_WORD.match(text, end)
    word = m.group(1) if m else None
    return bool(word) and word.lower() not in _NOT_NOUN_START


def rewrite(text: str, table: SwapTable, mapping: dict[str, str]) -> str:
    """Rewrite every swappable word of a group in ``mapping`` to the target group's word.

    Parameters
    ----------
    text : the text.
    table : a ``SwapTable``.
    mapping : source group -> target group (groups of the same axis), applied simultaneously.
    """
    if not text or not mapping:
        return text

    def repl(m: re.Match[str]) -> str:
        span = m.group(0)
        key = normalise_match(span)
        if key in _PRONOUNS:
            if key in ("his", "him") and mapping.get("male") == "female":
                tgt = "her" if key == "him" or _noun_follows(m.string, m.end()) else "hers"
            elif key in ("her", "hers") and mapping.get("female") == "male":
                tgt = "his" if key == "hers" or _noun_follows(m.string, m.end()) else "him"
            else:
                return span
            return _match_case(span, tgt)
        for axis, group, row in table.entries.get(key, ()):
            target_group = mapping.get(group)
            if target_group is None:
                continue
            if key in table.names and not span[:1].isupper():
                return span
            target = table.rows[axis][row].get(target_group)
            return span if target is None else _match_case(span, target)
        return span

    return table.pattern.sub(repl, text)


def swap_text(text: str, table: SwapTable) -> str:
    """The two-sided gender swap (male <-> female) of one text.

    Applying it twice returns the text, except where "her" is misread (module docstring).
    """
    if "gender" not in table.groups:
        raise ValueError(f"swap_text needs the gender swap list; table axes: {table.axes}")
    a, b = table.groups["gender"][:2]
    return rewrite(text, table, {a: b, b: a})


def _mentioned_in_table(text: str, table: SwapTable) -> set[str]:
    found: set[str] = set()
    for m in table.pattern.finditer(text):
        span = m.group(0)
        key = normalise_match(span)
        if key in _PRONOUNS:
            found.add("male" if key in ("his", "him") else "female")
            continue
        if key in table.names and not span[:1].isupper():
            continue
        found.update(g for _, g, _ in table.entries.get(key, ()))
    return found


_ANNOTATORS: dict[int, tuple[Lexicon, Any]] = {}


def _annotator(lexicon: Lexicon) -> Any:
    from debias.identity.annotate import IdentityAnnotator  # local: annotate is only needed here

    hit = _ANNOTATORS.get(id(lexicon))
    if hit is None or hit[0] is not lexicon:
        hit = (lexicon, IdentityAnnotator(lexicon))
        _ANNOTATORS[id(lexicon)] = hit
    return hit[1]


def counterfactual_variants(text: str, *, lexicon: Lexicon, table: SwapTable) -> list[dict[str, str]]:
    """Every one-group rewrite of a text: each mentioned group to each other group of its axis.

    A group counts as mentioned if the lexicon detects it or one of its swap words (a pronoun,
    a name) occurs. Only variants whose text differs from the input are returned.

    Returns
    -------
    list of dict
        ``{"axis", "source_group", "target_group", "text"}``, ordered by axis (table order),
        source group, then target group (axis order).
    """
    if not isinstance(text, str):
        raise TypeError(f"counterfactual_variants expects a str; found {type(text).__name__}")
    axis_of = table.axis_of
    mentioned = {g for g in _annotator(lexicon).detect(text) if g in axis_of} | _mentioned_in_table(text, table)
    out = []
    for axis, groups in table.groups.items():
        for source in sorted(g for g in mentioned if axis_of.get(g) == axis):
            for target in groups:
                if target == source:
                    continue
                new = rewrite(text, table, {source: target})
                if new != text:
                    out.append({"axis": axis, "source_group": source, "target_group": target, "text": new})
    return out


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
                         reannotate: bool = True) -> pd.DataFrame:
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
    for role, col in (("text_col", text_col), ("id_col", id_col)):
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
    texts = out[text_col].tolist()
    eligible = ~out["is_augmented"].to_numpy()
    # With only two-group axes (gender) the mapping is the same for every row: draw it once.
    fixed = row_mapping(table, "", seed) if all(len(g) <= 2 for g in table.groups.values()) else None
    maybe = _may_match(texts, table)
    new_texts: list[str | None] = []
    for i, (rid, t) in enumerate(zip(ids, texts, strict=True)):
        if not eligible[i] or not maybe[i] or not isinstance(t, str) or table.pattern.search(t) is None:
            new_texts.append(None)
            continue
        cf = rewrite(t, table, fixed or row_mapping(table, rid, seed))
        new_texts.append(cf if cf != t else None)
    changed = np.array([x is not None for x in new_texts], dtype=bool)

    if mode == "replace":
        draw = np.array([_u64("replace", seed, rid) / 2.0**64 < probability for rid in ids], dtype=bool)
        pick = changed & draw
        if pick.any():
            col = out[text_col].astype(object).to_numpy().copy()
            col[pick] = [new_texts[i] for i in np.flatnonzero(pick)]
            out[text_col] = pd.Series(col, index=out.index).astype(df[text_col].dtype)
            out.loc[pick, "is_augmented"] = True
            out = _reannotate(out, pick, lexicon, text_col) if reannotate else out
        return out

    src_idx = np.flatnonzero(changed)
    out.loc[out.index[src_idx], "pair_id"] = [ids[i] for i in src_idx]
    gen = out.iloc[src_idx].copy()
    gen[id_col] = [f"{ids[i]}~cf" for i in src_idx]
    gen[text_col] = pd.Series([new_texts[i] for i in src_idx], index=gen.index).astype(df[text_col].dtype)
    gen["is_augmented"] = True
    if reannotate:
        gen = _reannotate(gen, np.ones(len(gen), dtype=bool), lexicon, text_col)
    base = out if mode == "append" else out.iloc[src_idx]
    return pd.concat([base, gen], ignore_index=True)


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


def _reannotate(df: pd.DataFrame, mask: np.ndarray, lexicon: Lexicon | None, text_col: str) -> pd.DataFrame:
    if lexicon is None or "groups" not in df.columns or not mask.any():
        return df
    ann = _annotator(lexicon)
    found = ann.detect_groups(df.loc[mask, text_col].tolist())
    from debias.identity.annotate import groups_series

    df = df.copy()
    merged = [list(g) if g is not None else [] for g in df["groups"].tolist()]
    for pos, gs in zip(np.flatnonzero(mask), found, strict=True):
        merged[pos] = gs
    df["groups"] = groups_series(merged, df.index)
    # Every g_<group> flag of a rewritten row follows its new groups, the given identity
    # columns' groups too (the source's flag no longer describes the rewritten text), so the
    # flags stay a function of `groups` (debias.identity.annotate.membership_flags).
    cols = [(group_name(c), c) for c in df.columns if is_group_column(c)]
    if cols:  # all flag columns in one assignment (one .loc per column cost 4 ms each)
        sets = [set(gs) for gs in found]
        flags = np.array([[g in s for g, _ in cols] for s in sets], dtype=bool).reshape(len(sets), len(cols))
        pos = np.flatnonzero(mask)
        for j, (_, col) in enumerate(cols):
            values = df[col].to_numpy(dtype=bool, copy=True)
            values[pos] = flags[:, j]
            df[col] = values
    return df
