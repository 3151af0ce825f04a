"""One suite frame from its config: the evaluation job's suites, built from the run's splits, the
project's templates, counterfactual swaps or a file, with the identity tools the config names.

The splits are read through the ``read_split`` callable the caller passes (the job reads parquet
from the run directory; a test passes a frame), so this module does no run-directory I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pandas as pd

from debias.config import PipelineConfig, SuiteConfig
from debias.corpus.augment import counterfactual_batch
from debias.corpus.clean import clean_texts
from debias.evaluation import suites as S
from debias.identity.tools import identity_tools
from debias.schema import TEXT_PAIR

__all__ = ["build_suite"]


def build_suite(sc: SuiteConfig, cfg: PipelineConfig, *, read_split: Callable[[str], pd.DataFrame],
                cache: dict[str, Any] | None = None) -> pd.DataFrame:
    """The rows of suite ``sc`` (``debias.evaluation.suites`` layout).

    Parameters
    ----------
    sc : the suite's config.
    cfg : the pipeline config: ``annotate`` (axes, lexicon_dir), ``augment`` (axes, swap_dir) and
        the evaluation seed.
    read_split : ``read_split("test")`` returns that preprocessed split as a DataFrame.
    cache : shared between the suites of one evaluation, so the test split is read once.
    """
    cache = {} if cache is None else cache
    seed = cfg.evaluate.seed if cfg.evaluate.seed is not None else cfg.seed
    tools = identity_tools(axes=cfg.annotate.axes, lexicon_dir=cfg.annotate.lexicon_dir,
                           swap_axes=cfg.augment.axes, swap_dir=cfg.augment.swap_dir)

    def annotate(df: pd.DataFrame) -> pd.DataFrame:
        return tools.annotator(df, text_col="text", pair_col=TEXT_PAIR if TEXT_PAIR in df.columns else None)

    def split(name: str) -> pd.DataFrame:
        if name not in cache:
            cache[name] = read_split(name)
        return cache[name]

    if sc.kind in ("test_split", "val_split"):
        df = S.from_split(split("test" if sc.kind == "test_split" else "val"), suite=sc.name)
        if sc.limit:
            df = S.sample_rows(df, sc.limit, seed).reset_index(drop=True)
    elif sc.kind == "identity_templates":
        lex = tools.lexicon
        # the forms that fill {person}/{people}/{adj}: packaged, plus a forms.yaml beside the user's sets
        df = S.fill_templates(S.load_templates(sc.template_dir, sets=sc.template_sets, task=sc.template_task), lex.terms,
                              forms=S.load_forms(sc.template_dir), axes=lex.groups, suite=sc.name)
        if sc.limit:
            df = S.sample_rows(df, sc.limit, seed).reset_index(drop=True)
    elif sc.kind == "counterfactual_pairs":
        src = split("test")
        make_pairs = partial(counterfactual_batch, table=tools.swaps, lexicon=tools.lexicon, mode="pairs",
                             probability=1.0, seed=seed, text_col="text", id_col="id",
                             pair_col=TEXT_PAIR if TEXT_PAIR in src.columns else None)
        if sc.limit and len(src) > sc.limit:
            src = src.sample(n=sc.limit, random_state=seed).sort_index()
        df = S.counterfactual_pairs(src, make_pairs=make_pairs, suite=sc.name, annotate=annotate)
    elif sc.kind == "labelled_file":
        # an external file is cleaned (and PII masked) like the corpus before it is scored or
        # annotated: the model never saw raw HTML or e-mail addresses, and the outputs keep none
        later = (lambda d: d.assign(groups=[[] for _ in range(len(d))])) if sc.group_col is None else None
        df = S.load_labelled_file(sc, annotate=later, seed=seed, class_names=cfg.data.class_names)  # groups found below, on the cleaned text
        df["text"] = clean_texts(df["text"].astype(str).tolist(), params=cfg.clean)
        if TEXT_PAIR in df.columns:
            df[TEXT_PAIR] = clean_texts(df[TEXT_PAIR].astype(str).tolist(), params=cfg.clean)
        if sc.group_col is None:
            df["groups"] = annotate(df[[c for c in ("id", "text", TEXT_PAIR) if c in df.columns]].copy()
                                    )["groups"].map(list).to_numpy()
    elif sc.kind == "minimal_pairs":
        df = S.load_minimal_pairs(sc, seed=seed)
        df["text"] = clean_texts(df["text"].astype(str).tolist(), params=cfg.clean)
    else:  # pragma: no cover - config's Literal forbids it
        raise ValueError(f"unknown suite kind {sc.kind!r}")
    if len(df) == 0:
        raise ValueError(f"suite {sc.name!r} ({sc.kind}) has no rows to score")
    return df
