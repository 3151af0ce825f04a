"""The whole corpus pipeline in one process, on one pandas frame.

The plain alternative the Ray job (``jobs/preprocess.py``) is benchmarked against
(``bench/preprocess.py``), and the oracle its integration tests compare it with: the same
stage functions, composed without partitions, so any difference is the job's wiring.
"""

from __future__ import annotations

import time
from typing import Any

import pandas as pd

from debias.corpus import audit, resample
from debias.corpus.dedup import dedup_block, kept_view, rejects_view
from debias.corpus.finalize import finalize_batch, plan_from_counts, train_rows
from debias.corpus.patterns import audit_from_patterns, cells_from_patterns, pattern_counts
from debias.corpus.prepare import freeze_startup_heap, merge_pii_counts, prepare_batch
from debias.identity.tools import lexicon_for

__all__ = ["run_local"]


def run_local(df: pd.DataFrame, *, cfg: dict[str, Any],
              timings: dict[str, float] | None = None) -> dict[str, Any]:
    """All stages in one process on one frame (the plain alternative, and a test oracle).

    ``cfg`` is ``PipelineConfig.model_dump()``. Returns the ``rejects`` and ``output`` frames,
    the ``audit_counts``, the balance ``plan``, the row accounting (``n_read``,
    ``n_rejected``, ``n_duplicates``) and ``pii_masked`` (matches masked per kind). ``timings``, if given, receives the seconds spent in
    each phase (same phases as the job).
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
    lex = lexicon_for(ann["axes"], ann["lexicon_dir"])
    group_names = sorted(set(lex.group_names) | set(cfg["data"]["identity"]["columns"]))
    pc = pattern_counts(deduped)
    audit_counts = audit_from_patterns(pc, group_names=group_names, positive=_focus_id(cfg))
    gcounts = audit.group_counts(audit_counts)
    cells = cells_from_patterns(pc, intersectional=cfg["balance"]["intersectional"], group_counts=gcounts)
    plan = plan_from_counts(cells, cfg=cfg, group_counts=gcounts)
    if "resample" in plan:
        train = train_rows(deduped)
        hist = resample.u_histogram(train, cells=plan["resample"])
        bvals = resample.boundary_values(train, cells=plan["resample"],
                                        bin_index_per_cell=resample.boundary_bins(plan["resample"], hist))
        plan["thresholds"] = resample.thresholds(plan["resample"], hist, bvals)
    t["audit_plan"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    final = finalize_batch(deduped, cfg=cfg, plan=plan)
    t["balance_augment_write"] = time.perf_counter() - t0
    return {"rejects": rejects, "output": final, "audit_counts": audit_counts, "plan": plan,
            "n_read": len(df), "n_rejected": len(rejects), "n_duplicates": len(kept) - len(deduped),
            "pii_masked": merge_pii_counts([prepared.attrs.get("pii_masked", {})])}


def _focus_id(cfg: dict[str, Any]) -> int:
    """The audited class of a dumped config: ``evaluate.focus_class``'s id, default 1."""
    f = cfg.get("evaluate", {}).get("focus_class")
    return 1 if f is None else list(cfg["data"]["class_names"]).index(f)
