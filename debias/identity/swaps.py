"""Counterfactual swaps: rewrite a text as if it were about another identity group.

This module holds the swap table (loading, the one-pass rewrite, every variant of one text);
augmenting a corpus batch with the rewritten rows is :mod:`debias.corpus.augment`.

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

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from debias.identity.lexicon import (
    Lexicon,
    _packaged_dir,
    compile_terms,
    normalise_match,
    pluralize,
    prefilter_pattern,
    read_yaml,
)

__all__ = ["SwapTable", "annotator_of", "available_swap_axes", "counterfactual_variants", "load_swaps",
           "rewrite", "swap_text"]

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


def annotator_of(lexicon: Lexicon) -> Any:
    """The annotator over ``lexicon``, built once per lexicon object (variants and augmentation
    detect the groups of many texts with the same lexicon)."""
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
    mentioned = {g for g in annotator_of(lexicon).detect(text) if g in axis_of} | _mentioned_in_table(text, table)
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
