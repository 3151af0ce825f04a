"""evaluate + report end to end: tiny random BERT, a tiny preprocessed run, the shared local Ray."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AXES = ["gender", "religion"]
SENTENCES = [("I had lunch with a {t} today", 0), ("the {t} next door is lovely", 0),
             ("you are a stupid {t} and I hate you", 1), ("shut up, you worthless {t}", 1),
             ("what a nice day", 0), ("go to hell, idiot", 1)]
TERMS = ["woman", "man", "muslim", "christian", "girl", "jew"]


def _write_run(run_dir: Path) -> None:
    """A preprocess output with the documented row schema, written as real parquet."""
    from debias.corpus import audit
    from debias.identity.annotate import IdentityAnnotator
    from debias.identity.lexicon import load_lexicon

    lex = load_lexicon(AXES)
    rows = []
    for k in range(4):
        for s, y in SENTENCES:
            for t in TERMS:
                rows.append({"text": s.format(t=t) + "!" * k, "label": y})
    df = pd.DataFrame(rows).drop_duplicates("text").reset_index(drop=True)
    df["id"] = [f"r{i}" for i in range(len(df))]
    df = IdentityAnnotator(lex)(df, text_col="text")
    df["split"], df["sample_weight"], df["pair_id"], df["is_augmented"] = "test", 1.0, None, False
    out = run_dir / "preprocess"
    (out / "test").mkdir(parents=True)
    df.to_parquet(out / "test" / "part-0.parquet", index=False)
    counts = audit.audit_counts(df, group_names=lex.group_names)
    (out / "audit.json").write_text(json.dumps(audit.audit_report(counts, min_group_size=5)))
    (out / "manifest.json").write_text(json.dumps({"stage": "preprocess", "rows": {"read": len(df) + 3,
                                       "rejected": 3, "kept": len(df)}, "reject_reasons": {"empty text": 3}}))


def _external(tmp: Path) -> tuple[Path, Path]:
    lab = tmp / "madlibs.csv"
    pd.DataFrame({"Text": [f"{v} {t}" for v in ("hug", "kill", "love", "hate") for t in TERMS],
                  "Label": [("BAD" if v in ("kill", "hate") else "NOT_BAD")
                            for v in ("hug", "kill", "love", "hate") for _ in TERMS]}).to_csv(lab, index=False)
    mp = tmp / "pairs.csv"
    pd.DataFrame({"more": ["women are bad drivers", "muslims are violent", "old people are slow"],
                  "less": ["men are bad drivers", "christians are violent", "young people are slow"],
                  "bias_type": ["gender", "religion", "age"]}).to_csv(mp)
    return lab, mp


def _cfg(tiny_model_dir, lab, mp, extra_suites=(), **ev):
    from debias.config import load_config

    suites = [
        {"name": "test", "kind": "test_split"},
        {"name": "templates", "kind": "identity_templates", "template_sets": ["statements"], "limit": 300},
        {"name": "madlibs", "kind": "labelled_file", "path": str(lab), "text_col": "Text", "label_col": "Label",
         "label_map": {"BAD": 1, "NOT_BAD": 0}},
        {"name": "pairs", "kind": "minimal_pairs", "path": str(mp), "pair_cols": ["more", "less"],
         "group_col": "bias_type"},
    ]
    if _has_augment():
        suites.insert(2, {"name": "counterfactual", "kind": "counterfactual_pairs"})
    suites += list(extra_suites)
    return load_config(base={
        "data": {"path": "unused"}, "annotate": {"axes": AXES}, "augment": {"axes": AXES},
        "evaluate": {"model": str(tiny_model_dir), "batch_size": 16, "n_boot": 30, "min_group_size": 5,
                     "explain_top_k": 2, "ig_steps": 8, "suites": suites, **ev}})


def _has_augment() -> bool:
    try:
        from debias.corpus.augment import counterfactual_batch  # noqa: F401
        from debias.identity.swaps import load_swaps  # noqa: F401
    except ImportError:
        return False
    return True


def test_evaluate_then_report(tmp_path, tiny_model_dir, ray_local):
    from jobs import evaluate, report

    run_a, run_b = tmp_path / "baseline", tmp_path / "mitigated"
    _write_run(run_a)
    lab, mp = _external(tmp_path)
    cfg = _cfg(tiny_model_dir, lab, mp)

    # Bad gates fail before any inference, naming the available metrics.
    with pytest.raises(ValueError, match="unknown metric 'bnsp'.*available"):
        evaluate.run(cfg, str(run_a), gates=["bnsp.min>=0.9"])
    assert not (run_a / "evaluate").exists()

    man = evaluate.run(cfg, str(run_a), gates=["auc>=0", "dp_difference<=-1", "templates:bnsp_auc.min>=0"])
    assert [g["passed"] for g in man["gates"]] == [True, False, True]
    assert man["gates"][1]["value"] is not None

    out = run_a / "evaluate"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["suites"]) >= {"test", "templates", "madlibs", "pairs"}
    for name, n in man["rows"].items():
        p = pd.read_parquet(out / "predictions" / name)
        assert len(p) == n
        assert p["y_score"].between(0, 1).all()
        assert (p["y_pred"] == (p["y_score"] >= 0.5)).all()
    # Ray scoring agrees with a plain in-process Predictor (rows put back in the right order).
    from debias.evaluation.predict import Predictor

    test_pred = pd.read_parquet(out / "predictions" / "test").sort_values("id")
    direct = Predictor(tiny_model_dir, batch_size=7).predict_texts(test_pred["text"].tolist())
    np.testing.assert_allclose(test_pred["y_score"].to_numpy(), direct, atol=1e-5)
    # Templates: both variants of every filled template were scored.
    tp = pd.read_parquet(out / "predictions" / "templates")
    assert set(tp["variant"]) == {"neutral", "toxic"}
    assert metrics["suites"]["pairs"]["pair_gaps"][0]["n_pairs"] == 3
    assert metrics["worst_cases"] and all(c["attribution"]["tokens"] for c in metrics["worst_cases"])

    # A second run (same data, its threshold tuned on a val split) for the before/after comparison.
    shutil.copytree(run_a / "preprocess", run_b / "preprocess")
    import pyarrow as pa
    import pyarrow.parquet as pq

    val = pq.read_table(run_b / "preprocess" / "test")
    val = val.set_column(val.schema.get_field_index("id"), "id", pa.array(["v" + str(x) for x in val["id"].to_pylist()]))
    val = val.set_column(val.schema.get_field_index("split"), "split", pa.array(["val"] * len(val)))
    (run_b / "preprocess" / "val").mkdir()
    pq.write_table(val, run_b / "preprocess" / "val" / "part-0.parquet")
    cfg_b = _cfg(tiny_model_dir, lab, mp, [{"name": "val", "kind": "val_split"}], threshold=0.45,
                 explain_method="occlusion", tune_threshold=True)
    evaluate.run(cfg_b, str(run_b))
    mb = json.loads((run_b / "evaluate" / "metrics.json").read_text())
    vp = pd.read_parquet(run_b / "evaluate" / "predictions" / "val")
    assert len(vp) == len(val) and vp["id"].str.startswith("v").all()
    from debias.metrics import best_f1_threshold

    assert mb["threshold"] == pytest.approx(best_f1_threshold(vp["y_true"], vp["y_score"])[0])
    assert "val" in mb["threshold_source"]
    for name in ("test", "madlibs"):
        p = pd.read_parquet(run_b / "evaluate" / "predictions" / name)
        assert (p["y_pred"] == (p["y_score"] >= mb["threshold"])).all()

    html_path = report.run(cfg, [str(run_a), str(run_b)], out_run_dir=str(tmp_path / "cmp"))
    html = Path(html_path).read_text()
    for anchor in ("how-to-read", "comparison", "pareto", "run-1-gates", "run-1-audit",
                   "run-1-suite-test-groups", "run-1-suite-test-bias-auc", "run-1-worst", "run-2-worst",
                   "run-1-suite-templates-bias-auc"):
        assert f'id="{anchor}"' in html, anchor
    if _has_augment():
        assert 'id="run-1-suite-counterfactual-counterfactual"' in html
    assert "ROC curves" in html and "Score distributions" in html and "Minimal pairs by bias type" in html
    assert "lower is better" in html and "higher is better" in html
    assert 'class="tok"' in html  # attributions rendered
    assert "FAIL" in html and "dp_difference&lt;=-1" in html
    # Self-contained: no external resources.
    assert not re.search(r'(src|href)="(https?:)?//', html)
    assert "<script src" not in html and "<link" not in html
    assert html.count("data:image/png;base64,") >= 8
    m = json.loads((tmp_path / "cmp" / "report" / "metrics.json").read_text())
    assert [r["name"] for r in m["runs"]] == ["baseline", "mitigated"] and len(m["pareto"]["points"]) == 2

    # A single run renders without the comparison.
    one = Path(report.run(cfg, [str(run_a)], out_run_dir=str(run_a))).read_text()
    assert 'id="comparison"' not in one and 'id="run-1-worst"' in one


def test_group_thresholds_fitted_stored_and_applied(tmp_path, tiny_model_dir, ray_local):
    """evaluate.group_thresholds fits per-group thresholds on the val split, applies them to every
    suite, stores the rule with the run's own model, and a later `stored` evaluation reuses it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from debias.evaluation.thresholds import GroupThresholds, fit_group_thresholds
    from jobs import evaluate

    run = tmp_path / "run"
    _write_run(run)
    val = pq.read_table(run / "preprocess" / "test")
    val = val.set_column(val.schema.get_field_index("split"), "split", pa.array(["val"] * len(val)))
    (run / "preprocess" / "val").mkdir()
    pq.write_table(val, run / "preprocess" / "val" / "part-0.parquet")
    shutil.copytree(tiny_model_dir, run / "train" / "model")
    (run / "train" / "model" / "model_card.json").write_text(json.dumps({"run_name": "tiny", "class_names": ["fine-text", "flagged-text"]}))
    lab, mp = _external(tmp_path)
    val_suite = [{"name": "val", "kind": "val_split"}]
    with pytest.raises(ValueError, match="holds no group_thresholds.json"):  # before any inference
        evaluate.run(_cfg(tiny_model_dir, lab, mp, val_suite, model=None, group_thresholds="stored"), str(run))

    cfg = _cfg(tiny_model_dir, lab, mp, val_suite, model=None, explain_top_k=0,
               group_thresholds="equal_opportunity", group_thresholds_min_rows=5)
    evaluate.run(cfg, str(run))
    out = run / "evaluate"
    m = json.loads((out / "metrics.json").read_text())
    assert m["decision_rule"]["constraint"] == "equal_opportunity" and "fitted on suite 'val'" in m["threshold_source"]
    stored = GroupThresholds.load(run / "train" / "model")
    assert stored is not None and stored.to_dict() == json.loads((out / "group_thresholds.json").read_text())
    assert stored.seed == cfg.seed  # so the service draws as this evaluation did
    # The model card now carries the evaluation's headline metrics with intervals and the rule.
    card = json.loads((run / "train" / "model" / "model_card.json").read_text())
    auc = next(r for r in card["evaluation"] if r["suite"] == "test" and r["metric"] == "AUC")
    overall = next(r for r in m["suites"]["test"]["summary"]["by_group"] if r["kind"] == "overall")
    assert auc["value"] == pytest.approx(overall["roc_auc"])
    assert auc["lo"] <= auc["value"] <= auc["hi"]
    readme = (run / "train" / "model" / "README.md").read_text()
    assert "## Evaluation" in readme and "Per-group thresholds (equal_opportunity)" in readme
    # The rule is the one fitted on the val predictions by the library function.
    vp = pd.read_parquet(out / "predictions" / "val")
    oracle = fit_group_thresholds(vp["y_true"].to_numpy(), vp["y_score"].to_numpy(),
                                  [list(g) for g in vp["groups"]], constraint="equal_opportunity", min_rows=5)
    assert set(stored.rules) == set(oracle.rules) and len(stored.rules) >= 3  # some groups + pooled
    for c, r in oracle.rules.items():
        assert stored.rules[c].thresholds == pytest.approx(r.thresholds)
    # Every suite's decisions are the rule's (per group, drawn by text), not score >= 0.5.
    preds = {}
    for name in ("test", "madlibs", "templates"):
        p = pd.read_parquet(out / "predictions" / name)
        want = stored.predict(p["y_score"].to_numpy(), [list(g) for g in p["groups"]],
                              keys=p["text"].tolist())  # the rule's own seed
        assert (p["y_pred"].to_numpy() == want).all(), name
        preds[name] = p["y_pred"].to_numpy()

    from jobs import report

    html = Path(report.run(cfg, [str(run)], out_run_dir=str(tmp_path / "rep"))).read_text()
    assert "per-group thresholds (equal opportunity" in html
    assert "flagged-text" in html  # the report speaks the model card's class names

    # Evaluate again from the stored rule: the same decisions.
    evaluate.run(_cfg(tiny_model_dir, lab, mp, val_suite, model=None, explain_top_k=0,
                      group_thresholds="stored"), str(run))
    for name, want in preds.items():
        assert (pd.read_parquet(out / "predictions" / name)["y_pred"].to_numpy() == want).all(), name
    # The plain configured threshold again: the stale rule leaves the model dir.
    evaluate.run(_cfg(tiny_model_dir, lab, mp, val_suite, model=None, explain_top_k=0), str(run))
    assert GroupThresholds.load(run / "train" / "model") is None
    assert json.loads((out / "group_thresholds.json").read_text())["constraint"] == "none"

    # The recall-matched tuned threshold (issue 23): the highest whose val recall reaches the
    # target, stored with the model for serve like the F1-best one.
    from debias.metrics import recall_matched_threshold

    evaluate.run(_cfg(tiny_model_dir, lab, mp, val_suite, model=None, explain_top_k=0, tune_threshold=True,
                      tune_recall=0.75), str(run))
    m = json.loads((out / "metrics.json").read_text())
    vp = pd.read_parquet(out / "predictions" / "val")
    want = recall_matched_threshold(vp["y_true"], vp["y_score"], 0.75)
    assert m["threshold"] == pytest.approx(want) and "recall-matched" in m["threshold_source"]
    assert (vp.loc[vp["y_true"] == 1, "y_score"] >= want).mean() >= 0.75
    assert GroupThresholds.load(run / "train" / "model").threshold == pytest.approx(want)


def test_shap_explanations_with_their_agreement_with_integrated_gradients(tmp_path, tiny_model_dir, ray_local):
    pytest.importorskip("shap", reason="shap is the optional 'explain' extra (make install puts it in)")
    from debias.config import load_config
    from jobs import evaluate, report

    run = tmp_path / "run"
    _write_run(run)
    cfg = load_config(base={
        "data": {"path": "unused"}, "annotate": {"axes": AXES}, "augment": {"axes": AXES},
        "evaluate": {"model": str(tiny_model_dir), "batch_size": 16, "n_boot": 10, "min_group_size": 5,
                     "explain_top_k": 2, "ig_steps": 8, "explain_method": "shap", "shap_max_evals": 40,
                     "suites": [{"name": "test", "kind": "test_split"}]}})
    evaluate.run(cfg, str(run))
    m = json.loads((run / "evaluate" / "metrics.json").read_text())
    assert m["explain_method"] == "shap" and m["worst_cases"]
    for c in m["worst_cases"]:
        a = c["attribution"]
        assert a["method"] == "shap" and [w for w, _ in a["tokens"]] == c["text"].split()
        assert sum(v for _, v in a["tokens"]) - (a["score"] - a["baseline_score"]) == pytest.approx(a["delta"])
    agree = m["explain_agreement"]
    assert agree["methods"] == ["shap", "integrated_gradients"] and agree["n_cases"] == len(m["worst_cases"])
    assert 0.0 <= agree["top1_agreement"] <= 1.0
    assert len(agree["disagree_ids"]) == round((1 - agree["top1_agreement"]) * agree["n_cases"])
    html = Path(report.run(cfg, [str(run)], out_run_dir=str(run))).read_text()
    assert "Do the methods agree?" in html and "shap and integrated gradients name the same" in html
