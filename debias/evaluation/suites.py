"""Bias test suites: the frames the evaluation job scores.

Each suite is one entry of ``evaluate.suites`` in the config (:class:`debias.config.SuiteConfig`)
and becomes a pandas frame with the same core columns, so one inference pass serves them all
and every metric is computed from the predictions afterwards:

==============  =========================================================================
``id``          row id, unique within the suite
``text``        the text the model scores
``y_true``      0/1 label (nullable ``Int8``: minimal pairs have none)
``groups``      list of identity groups the row is about (``[]``: none)
``pair_id``     key shared by the rows of a counterfactual or minimal pair (else null)
``suite``       the suite name
==============  =========================================================================

plus columns particular to a kind (``template``, ``variant``, ``term`` for templates;
``side``, ``bias_type`` for minimal pairs; ``is_augmented`` for counterfactual pairs).

Kinds
-----
``test_split``            the run's held-out test split (``RUN_DIR/preprocess/test``)
``val_split``             the validation split (``RUN_DIR/preprocess/val``): where
                          ``evaluate.tune_threshold`` chooses the decision threshold
``identity_templates``    the project's template sets (``debias/evaluation/templates/*.yaml``) filled
                          for every lexicon group with its grammatical forms ("an elderly person",
                          "women"; ``templates/forms.yaml``), or a user's ``{term}`` sets with
                          every lexicon term (Dixon et al. 2018, "Measuring and Mitigating
                          Unintended Bias in Text Classification", section 5)
``counterfactual_pairs``  the test split passed through augmentation in ``pairs`` mode
``labelled_file``         an external labelled file with a column mapping (e.g. bias-madlibs)
``minimal_pairs``         an external file of sentence pairs (e.g. CrowS-Pairs, Nangia et al.
                          2020): two rows per pair, scored for their gap
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from debias.config import SuiteConfig
from debias.evaluation.templates.forms import (
    FORM_SLOTS,
    FORMS_FILE,
    TERM_SLOT,
    Form,
    fill_slot,
    find_slots,
    load_forms,
    missing_forms,
)
from debias.schema import CORE_SUITE_COLUMNS, TEXT_PAIR, is_group_column

TEMPLATE_DIR = Path(__file__).parent / "templates"
SLOT = TERM_SLOT  # the raw-term slot of user-written sets; the packaged sets use FORM_SLOTS
CORE_COLUMNS = CORE_SUITE_COLUMNS
_READERS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet",
            ".jsonl": "jsonl", ".json": "jsonl"}


DEFAULT_VARIANTS = ("neutral", "toxic")


@dataclass(frozen=True)
class Template:
    """One template: two sentences sharing one identity slot, of label 0 and label 1.

    ``variants`` names them (label 0 first): ``("neutral", "toxic")`` for toxicity, a sentiment
    set says ``("negative", "positive")``. ``neutral`` and ``toxic`` are the label-0 and label-1
    sentences whatever the names.

    Each sentence holds one slot: ``{term}`` (the raw lexicon term) or one of the form slots
    ``{person}``, ``{people}``, ``{adj}`` and their capitalised variants
    (:mod:`debias.evaluation.templates.forms`); both sentences of a template use ``{term}``, or
    both use form slots (they may differ: ``{person}`` in one, ``{People}`` in the other).
    """

    set_name: str
    id: str
    neutral: str
    toxic: str
    variants: tuple[str, str] = DEFAULT_VARIANTS

    @property
    def slots(self) -> tuple[str, ...]:
        """The slots of the two sentences (label 0 first) -- exactly one each in a loaded template."""
        return (*find_slots(self.neutral), *find_slots(self.toxic))

    @property
    def uses_forms(self) -> bool:
        """Whether the template is filled from forms (else from raw lexicon terms)."""
        return any(s in FORM_SLOTS for s in self.slots)

    @property
    def needs_adjective(self) -> bool:
        """Whether a slot takes the adjective alone: only adjective forms fill the template."""
        return any(FORM_SLOTS.get(s, ("",))[0] == "adj" for s in self.slots)


def _set_variants(doc: dict, path: Path) -> tuple[str, str]:
    v = doc.get("variants", list(DEFAULT_VARIANTS))
    if not (isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) and x for x in v) and v[0] != v[1]):
        raise ValueError(f"{path}: 'variants' must name the label-0 and label-1 sentences, two distinct "
                         f"strings; found {v!r}")
    return (v[0], v[1])


_SLOT_NAMES = ", ".join((TERM_SLOT, *FORM_SLOTS))


def load_templates(template_dir: str | Path | None = None, *,
                   sets: Sequence[str] | None = None, task: str | None = "toxicity") -> list[Template]:
    """Read template sets from ``<template_dir>/<set>.yaml`` (default: the packaged ones).

    Parameters
    ----------
    template_dir : folder of YAML template sets; None means ``debias/evaluation/templates``.
        Its ``forms.yaml``, if any, is not a set: it holds forms (:func:`load_forms`).
    sets : names of the sets to read (file stems); None reads every ``*.yaml`` there whose
        ``task`` (default ``toxicity``) is ``task``.
    task : with ``sets=None``, which task's sets to read (None: all). A set file names its
        task and its two variants (``variants: [negative, positive]``; default
        ``[neutral, toxic]``), then a ``templates`` list of ``{id, <variant 0>, <variant 1>}``.

    Each sentence holds exactly one slot: ``{term}`` (filled with every raw lexicon term, as
    user-written sets have always been) or a form slot -- ``{person}`` ("an elderly person",
    "a woman"), ``{people}`` ("elderly people", "women"), ``{adj}`` ("elderly"), capitalised
    as ``{Person}``, ``{People}``, ``{Adj}`` to start a sentence -- filled from each group's
    forms, so the sentence is grammatical. The packaged sets use the form slots only.

    Raises
    ------
    ValueError
        A missing set, a template without both variants, a variant without exactly one slot, or
        a template mixing ``{term}`` with a form slot.
    """
    folder = Path(template_dir) if template_dir is not None else TEMPLATE_DIR
    if not folder.is_dir():
        raise ValueError(f"template folder must be an existing directory; found {str(folder)!r}")
    available = sorted(p.stem for p in folder.glob("*.yaml") if p.name != FORMS_FILE)
    docs = {name: yaml.safe_load((folder / f"{name}.yaml").read_text(encoding="utf-8")) or {}
            for name in (sets if sets is not None else available) if name in available}
    if sets is None:
        wanted = [n for n in available if task is None or docs[n].get("task", "toxicity") == task]
        if not wanted:
            raise ValueError(f"no template set for task {task!r} in {folder}; available: {available}")
    else:
        wanted = list(sets)
    unknown = [s for s in wanted if s not in available]
    if unknown:
        raise ValueError(f"unknown template set(s) {unknown}; available in {folder}: {available}")
    out: list[Template] = []
    for name in wanted:
        path = folder / f"{name}.yaml"
        doc = docs[name]
        variants = _set_variants(doc, path)
        items = doc.get("templates")
        if not isinstance(items, list) or not items:
            raise ValueError(f"{path}: expected a non-empty list under 'templates'; found {items!r}")
        seen: set[str] = set()
        for k, item in enumerate(items):
            if not isinstance(item, dict) or not {"id", *variants} <= set(item):
                raise ValueError(f"{path}: template #{k} needs keys id, {', '.join(variants)}; "
                                 f"found keys {sorted(map(str, item)) if isinstance(item, dict) else item!r}")
            tid = str(item["id"])
            if tid in seen:
                raise ValueError(f"{path}: duplicate template id {tid!r}")
            seen.add(tid)
            for variant in variants:
                found = find_slots(str(item[variant]))
                if len(found) != 1:
                    raise ValueError(f"{path}: template {tid!r} {variant} variant must contain exactly one "
                                     f"slot ({_SLOT_NAMES}); found {len(found)}: {found}")
            tpl = Template(name, tid, str(item[variants[0]]), str(item[variants[1]]), variants)
            if tpl.uses_forms and TERM_SLOT in tpl.slots:
                raise ValueError(f"{path}: template {tid!r} mixes {TERM_SLOT} with a form slot {tpl.slots}; "
                                 "both variants must use {term}, or both form slots")
            out.append(tpl)
    return out


def fill_templates(templates: Sequence[Template], terms: Mapping[str, Sequence[str]], *,
                   forms: Mapping[str, Sequence[Form]] | None = None,
                   axes: Mapping[str, str] | None = None, suite: str = "templates") -> pd.DataFrame:
    """Fill every template for every group: one neutral (label 0) and one toxic (label 1) row each.

    A ``{term}`` template is filled with every term of ``terms``; a template with form slots
    (``{person}``, ``{people}``, ``{adj}``; see :func:`load_templates`) with every form of each
    group of ``terms`` -- only the adjectives where a slot is ``{adj}``, so a group whose forms
    are all nouns has no rows of such a template.

    Parameters
    ----------
    templates : from :func:`load_templates`.
    terms : group -> its terms (a lexicon's ``.terms``): the groups to fill, and for ``{term}``
        templates the words. A term listed under two groups gives one row whose ``groups``
        holds both.
    forms : group -> its forms (:func:`load_forms`); None reads the packaged ones when a
        template needs them. Every group of ``terms`` needs forms for form-slot templates.
    axes : group -> axis (a lexicon's ``.groups``); adds an ``axis`` column when given.
    suite : value of the ``suite`` column.

    Returns
    -------
    DataFrame with the core columns plus ``template``, ``variant``, ``term`` (and ``axis``),
    sorted by template (in the given order), then by term (``{term}`` templates) or by group
    and form (form templates), then variant. A ``{term}`` template gives
    ``2 * n_distinct_terms`` rows with ids ``<set>/<template>/<variant>/<term>``; a form
    template ``2 * n_forms`` rows with ids ``<set>/<template>/<variant>/<form name>`` (the
    singular without its article: "woman", "elderly person"), ``groups`` the form's group and
    ``term`` the form's word ("woman", "elderly").

    Raises
    ------
    ValueError
        No templates, no terms, or groups of ``terms`` without forms for a form template.
    """
    if not templates:
        raise ValueError("no templates to fill; load_templates returned an empty list")
    by_term: dict[str, list[str]] = {}
    for group, ts in terms.items():
        for t in ts:
            t = str(t).strip()
            if t:
                by_term.setdefault(t, [])
                if group not in by_term[t]:
                    by_term[t].append(group)
    if not by_term:
        raise ValueError("no identity terms to fill the templates with; the lexicon is empty")
    if any(t.uses_forms for t in templates):
        forms = load_forms() if forms is None else forms
        missing = missing_forms(list(terms), forms)
        if missing:
            raise ValueError(f"no forms for group(s) {missing}: the template slots {sorted(FORM_SLOTS)} name a "
                             f"group's members by its forms; add them to a {FORMS_FILE} beside the template sets "
                             f"(template_dir; format in debias/evaluation/templates/{FORMS_FILE}), or use "
                             f"templates with the {TERM_SLOT} slot")
    rows: list[dict[str, Any]] = []

    def add(tpl: Template, key: str, groups: list[str], term: str, fill: Callable[[str], str]) -> None:
        for variant, label, pattern in ((tpl.variants[0], 0, tpl.neutral), (tpl.variants[1], 1, tpl.toxic)):
            row = {
                "id": f"{tpl.set_name}/{tpl.id}/{variant}/{key}",
                "text": fill(pattern),
                "y_true": label,
                "groups": groups,
                "pair_id": None,
                "suite": suite,
                "template": f"{tpl.set_name}/{tpl.id}",
                "variant": variant,
                "term": term,
            }
            if axes is not None:
                row["axis"] = ",".join(sorted({axes.get(g, "") for g in groups}))
            rows.append(row)

    for tpl in templates:
        if not tpl.uses_forms:
            for term in sorted(by_term):
                add(tpl, term, sorted(by_term[term]), term, lambda p, term=term: p.replace(SLOT, term))
            continue
        for group in sorted(terms):
            for form in forms[group]:
                if tpl.needs_adjective and not form.is_adjective:
                    continue
                add(tpl, form.name, [group], form.text, lambda p, form=form: fill_slot(p, form))
    return _finish(pd.DataFrame(rows))


def read_table(path: str | Path, *, what: str = "suite file") -> pd.DataFrame:
    """Read a CSV/TSV/parquet/JSONL file by its extension (a clear error for anything else)."""
    p = Path(path)
    if not p.exists():
        raise ValueError(f"{what} not found: {str(p)!r}")
    if p.is_dir():
        return pd.read_parquet(p)
    kind = _READERS.get(p.suffix.lower())
    if kind is None:
        raise ValueError(f"{what} {p.name!r}: expected one of {sorted(_READERS)}; found {p.suffix!r}")
    if kind == "csv":
        return pd.read_csv(p, dtype=str, keep_default_na=False)
    if kind == "tsv":
        return pd.read_csv(p, sep="\t", dtype=str, keep_default_na=False)
    if kind == "parquet":
        return pd.read_parquet(p)
    return pd.read_json(p, lines=True, dtype=False)


def _require(df: pd.DataFrame, cols: Mapping[str, str | None], *, suite: str, path: Any) -> None:
    """``cols``: config key -> column name; error names the key, the column and what is there."""
    missing = {k: c for k, c in cols.items() if c is not None and c not in df.columns}
    if missing:
        wanted = ", ".join(f"{c!r} (from {k})" for k, c in missing.items())
        raise ValueError(f"suite {suite!r}: file {str(path)!r} has no column {wanted}; "
                         f"columns present: {', '.join(map(str, df.columns))}")


def _labels(values: pd.Series, label_map: Mapping[str, int], *, suite: str, col: str,
            class_names: Sequence[str] | None = None) -> pd.Series:
    """Class ids of a labelled file: through ``label_map``, else class ids ("0".."K-1", "1.0"
    reads as 1), the class names (case-insensitive) and, when binary, true/false."""
    from debias.corpus.clean import default_label_map

    raw = values.astype(str).str.strip()
    if label_map:
        mapped = raw.map({str(k): int(v) for k, v in label_map.items()})
    else:
        known = default_label_map(list(class_names) if class_names else None)
        folded = raw.str.casefold()
        as_int = folded.str.replace(r"^(\d+)\.0+$", r"\1", regex=True)
        mapped = folded.map(known).fillna(as_int.map(known))
    bad = raw[mapped.isna()]
    if len(bad):
        hint = ("set label_map in the suite config" if not label_map
                else f"label_map covers {sorted(label_map)}")
        k = len(class_names) if class_names else 2
        raise ValueError(f"suite {suite!r}: column {col!r} has {len(bad)} value(s) that are not "
                         f"class labels (ids 0..{k - 1} or class names), e.g. {sorted(bad.unique())[:5]}; {hint}")
    return mapped.astype("int8")


def sample_rows(df: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    if limit is None or len(df) <= limit:
        return df
    # A seeded sample, not the first rows: template files are usually sorted by template.
    return df.sample(n=limit, random_state=seed).sort_index()


def _stable_id(prefix: str, values: Sequence[str]) -> list[str]:
    return [f"{prefix}{hashlib.sha1(v.encode('utf-8')).hexdigest()[:12]}" for v in values]


def load_labelled_file(cfg: SuiteConfig, *, annotate: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                       seed: int = 0, class_names: Sequence[str] | None = None) -> pd.DataFrame:
    """An external labelled suite (e.g. bias-madlibs) through the suite's column mapping.

    ``groups`` comes from ``group_col`` (one group name per row, or a list) when set, else from
    ``annotate`` (an :class:`debias.identity.annotate.IdentityAnnotator`) run on the text.
    """
    if cfg.path is None:
        raise ValueError(f"suite {cfg.name!r} (labelled_file) needs 'path'")
    if cfg.label_col is None:
        raise ValueError(f"suite {cfg.name!r} (labelled_file) needs 'label_col': the column holding "
                         "the 0/1 (or label_map-mapped) label")
    raw = read_table(cfg.path, what=f"suite {cfg.name!r} file")
    _require(raw, {"text_col": cfg.text_col, "label_col": cfg.label_col, "group_col": cfg.group_col,
                   "text_pair_col": cfg.text_pair_col}, suite=cfg.name, path=cfg.path)
    raw = sample_rows(raw, cfg.limit, seed)
    df = pd.DataFrame({
        "id": [f"{cfg.name}/{i}" for i in raw.index],
        "text": raw[cfg.text_col].astype(str).to_numpy(),
        "y_true": _labels(raw[cfg.label_col], cfg.label_map, suite=cfg.name, col=cfg.label_col,
                          class_names=class_names).to_numpy(),
    })
    if cfg.text_pair_col is not None:
        df[TEXT_PAIR] = raw[cfg.text_pair_col].astype(str).to_numpy()
    if cfg.group_col is not None:
        df["groups"] = [_as_groups(v) for v in raw[cfg.group_col]]
    elif annotate is not None:
        df["groups"] = annotate(df[["id", "text"]].copy())["groups"].map(list).to_numpy()
    else:
        raise ValueError(f"suite {cfg.name!r}: set group_col, or give an annotator to find "
                         "identity terms in the text")
    df["pair_id"] = None
    df["suite"] = cfg.name
    return _finish(df)


def load_minimal_pairs(cfg: SuiteConfig, *, seed: int = 0) -> pd.DataFrame:
    """An external minimal-pairs suite (e.g. CrowS-Pairs): two rows per pair, ``side`` first/second.

    ``pair_cols`` names the two sentence columns (for CrowS-Pairs ``[sent_more, sent_less]``:
    the more and the less stereotyping sentence); ``group_col`` (e.g. ``bias_type``) becomes
    ``groups`` and ``bias_type``. Labels are null: the metric is the score gap within a pair.
    """
    if cfg.path is None:
        raise ValueError(f"suite {cfg.name!r} (minimal_pairs) needs 'path'")
    if len(cfg.pair_cols) != 2:
        raise ValueError(f"suite {cfg.name!r} (minimal_pairs) needs pair_cols with exactly two "
                         f"column names; found {cfg.pair_cols}")
    raw = read_table(cfg.path, what=f"suite {cfg.name!r} file")
    first, second = cfg.pair_cols
    _require(raw, {"pair_cols[0]": first, "pair_cols[1]": second, "group_col": cfg.group_col},
             suite=cfg.name, path=cfg.path)
    raw = sample_rows(raw, cfg.limit, seed)
    pair_id = [f"{cfg.name}/{i}" for i in raw.index]
    bias = (raw[cfg.group_col].astype(str).to_numpy() if cfg.group_col is not None
            else np.full(len(raw), "all", dtype=object))
    parts = []
    for side, col in (("first", first), ("second", second)):
        parts.append(pd.DataFrame({
            "id": [f"{p}/{side}" for p in pair_id],
            "text": raw[col].astype(str).to_numpy(),
            "pair_id": pair_id,
            "side": side,
            "bias_type": bias,
            "_order": np.arange(len(raw)),
        }))
    df = pd.concat(parts, ignore_index=True).sort_values(["_order", "side"], kind="stable")
    df = df.drop(columns="_order").reset_index(drop=True)
    df["y_true"] = pd.array([pd.NA] * len(df), dtype="Int8")
    df["groups"] = [[b] for b in df["bias_type"]]
    df["suite"] = cfg.name
    return _finish(df)


def from_split(df: pd.DataFrame, *, suite: str) -> pd.DataFrame:
    """A preprocessed split (docs/ARCHITECTURE.md row schema) as a suite frame."""
    need = ["id", "text", "label", "groups"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"suite {suite!r}: split is missing column(s) {missing}; "
                         f"columns present: {', '.join(map(str, df.columns))}")
    out = df.rename(columns={"label": "y_true"}).copy()
    out["groups"] = out["groups"].map(lambda g: [] if g is None else list(g))
    if "pair_id" not in out.columns:
        out["pair_id"] = None
    out["suite"] = suite
    keep = [c for c in out.columns if c in CORE_COLUMNS or c in ("sample_weight", "is_augmented", TEXT_PAIR)]
    return _finish(out[keep])


def _as_groups(v: Any) -> list[str]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return []
    if isinstance(v, (list, tuple, np.ndarray)):
        return [str(x) for x in v]
    s = str(v).strip()
    return [s] if s else []


def _finish(df: pd.DataFrame) -> pd.DataFrame:
    """Core columns first, with their declared dtypes."""
    df = df.copy()
    df["id"] = df["id"].astype(str)
    df["text"] = df["text"].astype(str)
    df["y_true"] = pd.array(df["y_true"], dtype="Int8")
    # Plain lists (not Arrow-backed or numpy arrays): one layout for every suite and for parquet.
    df["groups"] = pd.Series([[] if g is None or (isinstance(g, float) and np.isnan(g)) else [str(x) for x in g]
                              for g in df["groups"]], index=df.index, dtype=object)
    df["pair_id"] = df["pair_id"].astype(object).where(df["pair_id"].notna(), None)
    if df["id"].duplicated().any():
        dup = df.loc[df["id"].duplicated(), "id"].iloc[0]
        raise ValueError(f"suite {df['suite'].iloc[0]!r}: duplicate row id {dup!r}")
    rest = [c for c in df.columns if c not in CORE_COLUMNS]
    return df[[*CORE_COLUMNS, *rest]].reset_index(drop=True)


def has_labels(df: pd.DataFrame) -> bool:
    """True when every row of a suite frame has a 0/1 label (minimal pairs have none)."""
    return len(df) > 0 and bool(df["y_true"].notna().all())


def counterfactual_pairs(test: pd.DataFrame, *, make_pairs: Callable[[pd.DataFrame], pd.DataFrame],
                         suite: str = "counterfactual",
                         annotate: Callable[[pd.DataFrame], pd.DataFrame] | None = None) -> pd.DataFrame:
    """The test split through counterfactual augmentation in ``pairs`` mode.

    Parameters
    ----------
    test : the test split (row schema).
    make_pairs : ``df -> df`` returning the originals plus one counterfactual row per swappable
        row, both carrying the same ``pair_id`` (``debias.corpus.augment.counterfactual_batch`` with
        ``mode="pairs"``).
    annotate : re-finds ``groups`` on the swapped texts (a swap changes the group mentioned).

    Returns
    -------
    Only complete pairs (an original and at least one counterfactual), sorted by pair.
    """
    base = test.loc[:, [c for c in ("id", "text", TEXT_PAIR, "label", "groups") if c in test.columns]].copy()
    if "pair_id" in test.columns:  # a split already holding augmented rows: score originals only
        keep = ~test.get("is_augmented", pd.Series(False, index=test.index)).fillna(False).astype(bool)
        base = base[keep.to_numpy()]
    out = make_pairs(base.reset_index(drop=True))
    missing = [c for c in ("id", "text", "pair_id") if c not in out.columns]
    if missing:
        raise ValueError(f"suite {suite!r}: make_pairs must return id, text and pair_id; missing {missing}")
    if annotate is not None:
        out = annotate(out.drop(columns=[c for c in out.columns if c == "groups" or is_group_column(c)]))
    sizes = out.groupby("pair_id", dropna=True)["id"].transform("size")
    out = out[out["pair_id"].notna() & (sizes >= 2)].copy()
    if "is_augmented" not in out.columns:
        out["is_augmented"] = out["id"] != out["pair_id"]
    out = out.sort_values(["pair_id", "is_augmented", "id"], kind="stable")
    out = out.rename(columns={"label": "y_true"})
    out["suite"] = suite
    keep = [c for c in out.columns if c in CORE_COLUMNS or c in ("is_augmented", TEXT_PAIR)]
    return _finish(out[keep])


def minimal_pair_gaps(df: pd.DataFrame, *, n_boot: int = 1000, confidence: float = 0.95,
                      seed: int | None = 0) -> pd.DataFrame:
    """Score gap within minimal pairs, overall and per bias type.

    ``gap = score(first) - score(second)``: for CrowS-Pairs (first = the more stereotyping
    sentence) a positive mean gap means the classifier finds stereotyping sentences about the
    disadvantaged group more toxic than the same sentence about the advantaged one. The
    share of pairs with ``gap > 0`` is the classifier analogue of the CrowS-Pairs metric
    (Nangia et al. 2020, section 3: the share of pairs where the model prefers the more
    stereotyping sentence; 0.5 is unbiased); the sign test asks whether that share differs
    from 0.5.

    Returns
    -------
    DataFrame: ``bias_type`` (``"all"`` first), ``n_pairs``, ``mean_gap``, ``mean_gap_lo``,
    ``mean_gap_hi`` (percentile bootstrap over pairs), ``mean_abs_gap``, ``first_higher_rate``
    and ``sign_test_p`` (two-sided exact binomial test, ties dropped).
    """
    from scipy.stats import binomtest

    from debias.metrics import percentile_interval

    need = ["pair_id", "side", "y_score"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise ValueError(f"minimal-pair predictions need {need}; missing {missing}")
    wide = df.pivot_table(index="pair_id", columns="side", values="y_score", aggfunc="first")
    if not {"first", "second"} <= set(wide.columns):
        raise ValueError("minimal-pair predictions need rows with side 'first' and 'second'")
    gap = (wide["first"] - wide["second"]).dropna()
    bias = df.drop_duplicates("pair_id").set_index("pair_id")["bias_type"] if "bias_type" in df.columns \
        else pd.Series("all", index=gap.index)
    rng = np.random.default_rng(seed)
    rows = []
    for name, g in [("all", gap), *sorted(gap.groupby(bias.reindex(gap.index)))]:
        v = g.to_numpy(dtype=np.float64)
        n = len(v)
        lo = hi = np.nan
        if n and n_boot:
            boot = v[rng.integers(0, n, size=(n_boot, n))].mean(axis=1)
            lo, hi = (float(x) for x in percentile_interval(boot, confidence))
        wins, losses = int((v > 0).sum()), int((v < 0).sum())
        p = float(binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else np.nan
        rows.append({"bias_type": name, "n_pairs": n, "mean_gap": float(v.mean()) if n else np.nan,
                     "mean_gap_lo": lo, "mean_gap_hi": hi,
                     "mean_abs_gap": float(np.abs(v).mean()) if n else np.nan,
                     "first_higher_rate": wins / n if n else np.nan, "sign_test_p": p})
    return pd.DataFrame(rows)


def counterfactual_by_group(df: pd.DataFrame, *, threshold: float = 0.5,
                            min_pairs: int = 1) -> pd.DataFrame:
    """Counterfactual gap per identity group: pairs in which any member mentions the group.

    Disaggregation of :func:`debias.metrics.counterfactual_metrics` over the predictions
    already made (no re-inference). Returns ``group``, ``n_pairs``, ``mean_abs_gap``,
    ``max_abs_gap``, ``flip_rate``, sorted by decreasing ``mean_abs_gap``.
    """
    from debias.metrics import counterfactual_metrics

    d = df[df["pair_id"].notna()]
    touched: dict[str, set] = {}
    for pid, gs in zip(d["pair_id"], d["groups"], strict=True):
        for g in (gs if gs is not None else []):
            touched.setdefault(g, set()).add(pid)
    rows = []
    for g, pids in touched.items():
        if len(pids) < min_pairs:
            continue
        r = counterfactual_metrics(d[d["pair_id"].isin(pids)], threshold=threshold,
                                   pred_col="y_pred" if "y_pred" in d.columns else None)
        if r.n_pairs:
            rows.append({"group": g, "n_pairs": r.n_pairs, "mean_abs_gap": r.mean_abs_gap,
                         "max_abs_gap": r.max_abs_gap, "flip_rate": r.flip_rate})
    cols = ["group", "n_pairs", "mean_abs_gap", "max_abs_gap", "flip_rate"]
    out = pd.DataFrame(rows, columns=cols)
    return out.sort_values(["mean_abs_gap", "group"], ascending=[False, True], kind="stable").reset_index(drop=True)


def suite_metrics(df: pd.DataFrame, *, kind: str, threshold: float = 0.5, n_boot: int = 1000,
                  min_group_size: int = 30, seed: int | None = 0) -> dict[str, Any]:
    """All metrics of one scored suite, JSON-safe, from its predictions only.

    Labelled suites get :func:`debias.metrics.fairness_summary` (group metrics with bootstrap
    intervals, disparities, criteria, group-vs-rest tests, bias AUCs); counterfactual pairs
    add the counterfactual gaps overall and per group; minimal pairs get
    :func:`minimal_pair_gaps`.
    """
    from debias.metrics import fairness_summary, to_json_safe

    out: dict[str, Any] = {"kind": kind, "n_rows": int(len(df))}
    if kind == "minimal_pairs":
        out["pair_gaps"] = to_json_safe(minimal_pair_gaps(df, n_boot=n_boot, seed=seed).to_dict("records"))
        return out
    if not has_labels(df):
        raise ValueError(f"suite of kind {kind!r} has rows without a 0/1 label; cannot compute metrics")
    cols = ["y_true", "y_score", "y_pred", "groups"]
    if "sample_weight" in df.columns:
        cols.append("sample_weight")
    if kind == "counterfactual_pairs":
        cols.append("pair_id")
    frame = df[cols].copy()
    frame["y_true"] = frame["y_true"].astype("int8")
    out["summary"] = fairness_summary(frame, threshold=threshold, n_boot=n_boot,
                                      min_group_size=min_group_size, seed=seed)
    if kind == "counterfactual_pairs":
        out["counterfactual_by_group"] = to_json_safe(
            counterfactual_by_group(df, threshold=threshold).to_dict("records"))
    return out
