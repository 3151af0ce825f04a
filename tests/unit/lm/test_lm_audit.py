"""The audit plan, metrics assembly and gates, on the real data sets when present."""

from __future__ import annotations

import math

import numpy as np
import pytest

from debias.config import load_config
from debias.evaluation.gates import check_gates, parse_gates
from debias.lm.audit import gate_values, plan, resolve_data_dir, suite_metrics
from debias.lm.config import AuditLMConfig
from debias.lm.report import render_audit_html

DATA = resolve_data_dir(AuditLMConfig())
needs_data = pytest.mark.skipif(not (DATA / "crows-pairs").is_dir() or not (DATA / "bbq").is_dir(),
                                reason=f"shared data sets not found under {DATA}")


def test_config_section_validates_and_overrides():
    cfg = load_config(None, ["audit_lm.limit=7", "audit_lm.suites=[bbq]"], base={"data": {"path": "x"}})
    assert cfg.audit_lm.limit == 7 and cfg.audit_lm.suites == ["bbq"]
    with pytest.raises(ValueError, match="audit_lm.limt: unknown key"):
        load_config(None, ["audit_lm.limt=7"], base={"data": {"path": "x"}})
    with pytest.raises(ValueError):
        AuditLMConfig(cf_prompt="no slot")


@needs_data
def test_plan_metrics_and_gates_with_fake_scores():
    cfg = AuditLMConfig(limit=5, n_boot=20, suites=["crows_pairs", "stereoset", "bbq"])
    p = plan(cfg)
    assert set(p.items) == {"crows_pairs", "stereoset_intrasentence", "stereoset_intersentence", "bbq"}
    assert len(p.score_rows) == 5 * 2 + 5 * 3 * 2 + 5 * 3 and p.score_rows["id"].is_unique
    assert len(p.prompt_rows) == 5
    rng = np.random.default_rng(0)
    scored = p.score_rows.assign(logprob_sum=rng.normal(size=len(p.score_rows)))
    scored["logprob_mean"] = scored["logprob_sum"]
    generated = p.prompt_rows.assign(completion="A", n_generated=1)
    m = suite_metrics(cfg, p, scored, generated)
    assert "counterfactual" not in m  # not requested
    bbq_gen = m["bbq_generate"]["by_category"][0]
    assert bbq_gen["unparsed_rate"] == 0.0
    vals = gate_values(m)
    crows = m["crows_pairs"]["by_bias_type"][0]
    assert vals["crows_pairs"]["stereotype_deviation"] == pytest.approx(abs(crows["stereotype_score"] - 50))
    res = check_gates(parse_gates(["crows_pairs:stereotype_deviation<=50", "bbq_unparsed_rate<=0",
                                   "bbq_mc:bbq_abs_s_amb.max<=-1", "cf_gen_gap_mean<=1"]), vals)
    assert [r["passed"] for r in res] == [True, True, False, False]  # no counterfactual suite: fails
    html = render_audit_html({"model": "x", "suites": m}, gates=res)
    assert "CrowS-Pairs" in html and "bbq_generate" in html and "stereotype_deviation" in html
    assert not any(isinstance(v, float) and math.isnan(v) for v in vals["crows_pairs"].values() if isinstance(v, float))


def test_summary_lines_one_per_suite_and_missing_values_print_as_nan():
    from debias.lm.audit import summary_lines

    suites = {"crows_pairs": {"by_bias_type": [{"stereotype_score": 52.04, "ci_low": None, "ci_high": float("nan"),
                                                "n": 10}]},
              "bbq_mc": {"by_category": [{"acc_ambig": 0.5, "acc_disambig": 0.25, "s_amb": 1.0, "s_dis": -2.0,
                                          "unparsed_rate": 0.0}]},
              "counterfactual": {"skipped": "no classifier"}}
    assert summary_lines(suites) == [
        "crows_pairs: stereotype score 52.0 [nan, nan] (n=10)",
        "bbq_mc: acc ambig 0.500 disambig 0.250 s_AMB 1.0 s_DIS -2.0 unparsed 0.000",
        "counterfactual: skipped (no classifier)"]
