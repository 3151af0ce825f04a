"""The report renders every section from a tiny run's metrics, offline, with labelled numbers."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from debias.evaluation.explain import explain_cases, worst_cases
from debias.evaluation.gates import check_gates, metric_values, parse_gates
from debias.evaluation.report import RunInput, fmt, headline_value, render_report, report_metrics
from debias.evaluation.suites import suite_metrics


def _preds(seed: int, shift: float) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n = 120
    groups = [["female"] if i % 3 == 0 else (["muslim"] if i % 3 == 1 else []) for i in range(n)]
    y = rng.integers(0, 2, n)
    bias = np.array([shift if g == ["muslim"] else 0.0 for g in groups])
    s = np.clip(0.25 + 0.5 * y + bias + rng.normal(0, 0.15, n), 0, 1)
    test = pd.DataFrame({"id": [f"t{i}" for i in range(n)], "text": [f"text number {i}" for i in range(n)],
                         "y_true": y, "groups": groups, "pair_id": None, "y_score": s})
    pid = [f"p{i // 2}" for i in range(40)]
    cf = pd.DataFrame({"id": [f"{p}~cf" if i % 2 else p for i, p in enumerate(pid)],
                       "text": ["he is here" if i % 2 == 0 else "she is here" for i in range(40)],
                       "y_true": [i // 2 % 2 for i in range(40)],
                       "groups": [["male"] if i % 2 == 0 else ["female"] for i in range(40)],
                       "pair_id": pid, "is_augmented": [bool(i % 2) for i in range(40)],
                       "y_score": np.clip(rng.random(40) * 0.2 + shift, 0, 1)})
    mp = pd.DataFrame({"id": [f"m{i // 2}/{'first' if i % 2 == 0 else 'second'}" for i in range(12)],
                       "text": ["a"] * 12, "y_true": pd.array([pd.NA] * 12, dtype="Int8"),
                       "groups": [["gender"]] * 12, "pair_id": [f"m{i // 2}" for i in range(12)],
                       "side": ["first", "second"] * 6, "bias_type": ["gender"] * 6 + ["race"] * 6,
                       "y_score": rng.random(12)})
    for d in (test, cf, mp):
        d["y_pred"] = (d["y_score"] >= 0.5).astype("int8")
    return {"test": test, "counterfactual": cf, "pairs": mp}


def _run(name: str, seed: int, shift: float, gates=("auc>=0.5", "dp_difference<=0.0001")) -> RunInput:
    preds = _preds(seed, shift)
    kinds = {"test": "test_split", "counterfactual": "counterfactual_pairs", "pairs": "minimal_pairs"}
    metrics = {n: suite_metrics(d, kind=kinds[n], n_boot=40, min_group_size=10) for n, d in preds.items()}
    values = {n: metric_values(m, min_group_size=10) for n, m in metrics.items()}
    cases = explain_cases(worst_cases({k: v for k, v in preds.items() if k != "pairs"}, k=2),
                          predict_fn=lambda ts: np.array([0.9 if "she" in t else 0.2 for t in ts]))
    doc = {"model_dir": "/models/x", "threshold": 0.5, "suites": metrics, "gate_values": values,
           "gates": check_gates(parse_gates(list(gates)), values), "worst_cases": cases,
           "explain_method": "occlusion"}
    audit = {"n": 100, "n_pos": 40, "base_rate": 0.4, "min_group_size": 10,
             "groups": {"female": {"n": 30, "n_pos": 15, "label_rate": 0.5, "share": 0.3, "log_odds_ratio": 0.5,
                                   "se": 0.3, "ci_low": -0.1, "ci_high": 1.1, "haldane": False, "chi2": 1.0,
                                   "p_value": 0.3, "small": False},
                        "__none__": {"n": 70, "n_pos": 25, "label_rate": 0.36, "share": 0.7, "log_odds_ratio": None,
                                     "se": None, "ci_low": None, "ci_high": None, "haldane": None, "chi2": None,
                                     "p_value": None, "small": False}}}
    return RunInput(name=name, run_dir=f"/runs/{name}", metrics=doc, predictions=preds, audit=audit,
                    preprocess_manifest={"rows": {"read": 105, "rejected": 5, "kept": 100,
                                                  "by_split": {"train": 80, "test": 20}},
                                         "reject_reasons": {"empty text": 5}},
                    evaluate_manifest={"config": {"threshold": 0.5, "min_group_size": 10}})


@pytest.fixture(scope="module")
def two_runs():
    return [_run("before", 0, 0.3), _run("after", 1, 0.0)]


@pytest.fixture(scope="module")
def html_two(two_runs):
    return render_report(two_runs)  # rendering draws every figure: once per module


@pytest.fixture(scope="module")
def html_one(two_runs):
    return render_report(two_runs[:1])


def test_report_has_every_section(html_two):
    html = html_two
    for anchor in ("how-to-read", "comparison", "pareto", "run-1", "run-2", "run-1-gates", "run-1-audit",
                   "run-1-suite-test-groups", "run-1-suite-test-bias-auc",
                   "run-1-suite-counterfactual-counterfactual", "run-1-worst", "run-2-worst"):
        assert f'id="{anchor}"' in html, anchor
    for text in ("ROC curves", "Score distributions", "False-positive rate per group", "Minimal pairs by bias type",
                 "Counterfactual gap per group", "Unintended-bias AUCs", "Data audit", "rejected because: empty text",
                 "no identity term", "Accuracy vs fairness"):
        assert text in html, text
    assert 'class="tok"' in html
    assert html.count("data:image/png;base64,") >= 10
    assert not re.search(r'(src|href)="(https?:)?//', html) and "<script" not in html and "<link" not in html


def test_every_headline_number_says_which_way_is_better(html_one):
    html = html_one
    assert 'id="comparison"' not in html
    rows = re.findall(r"<tr><td>([^<]+)</td><td class=\"num\">[^<]*</td><td>([^<]*)</td></tr>", html)
    assert rows
    assert all(d in ("higher is better", "lower is better", "a count") for _, d in rows)
    assert sum(d != "a count" for _, d in rows) >= 10


def test_gate_results_rendered_and_failed_gate_flagged(html_one):
    html = html_one
    assert "dp_difference&lt;=0.0001" in html and ">FAIL<" in html and ">PASS<" in html
    assert "1 of 2 gates passed" in html


def test_comparison_colours_improvements(two_runs, html_two):
    html = html_two
    # the counterfactual shift fell from 0.3 to 0: its gap change is an improvement only if it fell
    before = headline_value(two_runs[0].metrics["gate_values"]["test"], "bnsp_auc.min")
    after = headline_value(two_runs[1].metrics["gate_values"]["test"], "bnsp_auc.min")
    cls = "better" if after > before else "worse"
    assert f'<span class="{cls}">({after - before:+.3f})</span>' in html


def test_report_metrics_json(two_runs):
    import json

    m = report_metrics(two_runs)
    json.dumps(m)  # JSON-serialisable
    assert [r["name"] for r in m["runs"]] == ["before", "after"]
    assert m["pareto"]["accuracy"] == "test.auc" and len(m["pareto"]["points"]) == 2
    assert m["runs"][0]["headline"]["test"]["auc"] == pytest.approx(two_runs[0].metrics["gate_values"]["test"]["auc"])


def test_glossary_names_the_interval_method_of_each_statistic(html_one):
    import html as html_lib

    from debias.metrics import INTERVAL_METHODS

    text = html_lib.unescape(html_one)
    assert "95% bootstrap confidence intervals" not in text  # rates and AUCs are no longer bootstrapped
    for name, method in INTERVAL_METHODS.items():
        assert f"<tr><td>{name}</td><td>{method}</td></tr>" in text, name
    for method in ("Wilson score", "DeLong", "MOVER", "Bonferroni"):
        assert method in text, method


def test_class_names_come_from_the_caller_not_a_hard_coded_task(two_runs, html_one, monkeypatch):
    from debias.evaluation.report import plots

    axis_labels = []
    for f in ("roc_curves", "score_distributions"):
        real = getattr(plots, f)
        monkeypatch.setattr(plots, f, lambda *a, _real=real, **k: (axis_labels.append(k["class_names"]), _real(*a, **k))[1])
    html = render_report(two_runs[:1], class_names=("negative", "positive"))
    assert "toxic" not in html.lower()  # every word about the classes follows the names given
    assert "<th>positive share (labels)</th>" in html and "labelled <i>positive</i>" in html
    assert axis_labels and set(axis_labels) == {("negative", "positive")}  # the figures' axes too
    assert "<th>toxic share (labels)</th>" in html_one  # the default is the toxicity task's
    with pytest.raises(ValueError, match="class_names must be two non-empty names"):
        render_report(two_runs[:1], class_names=("only one",))


def test_small_groups_are_folded_under_a_toggle():
    run = _run("tiny", 2, 0.1)
    suite = run.metrics["suites"]["test"]["summary"]
    rows = [r for r in suite["by_group"] if r.get("kind") == "group"]
    assert rows
    small = dict(rows[0], group="tiny_group", count=4, small_group=True)
    suite["by_group"] = [*suite["by_group"], small]
    html = render_report([run])
    table = html[html.index('id="run-1-suite-test-groups"'):]
    table = table[:table.index("<h4", 10) if "<h4" in table[10:] else len(table)]
    folded = re.search(r'<details class="small-groups"><summary>(\d+) small groups?.*?</details>', table, re.S)
    assert folded and int(folded.group(1)) == sum(bool(r.get("small_group")) for r in suite["by_group"]
                                                  if r.get("kind") in ("group", "intersection") and r.get("count"))
    assert "<td>tiny_group</td>" in folded.group(0)
    big = [r["group"] for r in rows if not r.get("small_group")]
    assert big and all(f"<td>{g}</td>" in table.replace(folded.group(0), "") for g in big)


def test_report_starts_with_a_verdict(two_runs, html_one):
    import html as html_lib

    html = html_one
    assert html.index('id="verdict"') < html.index('id="how-to-read"') < html.index('id="run-1"')
    verdict = html_lib.unescape(html[html.index('id="verdict"'):html.index('id="how-to-read"')])
    assert "1 of 2 gates passed; failed: dp_difference<=0.0001." in verdict
    rows = re.findall(r"<tr><td>(\w+)</td><td>([^<]+)</td><td class=\"num\">([^<]*)</td><td>[^<]*</td>\n<td[^>]*>(\w+|–)</td></tr>",
                      verdict)
    by = {(suite, label): (value, gate) for suite, label, value, gate in rows}
    dp = by[("test", "Largest gap in flagged rate between groups (demographic parity)")]
    values = two_runs[0].metrics["gate_values"]["test"]
    assert dp == (fmt(headline_value(values, "dp_difference")), "FAIL")
    bnsp = by[("test", "Worst group: BNSP AUC: group's toxic rows vs other groups' non-toxic rows (low = false negatives)")]
    assert bnsp == (fmt(headline_value(values, "bnsp_auc.min")), "–")  # no gate on it
    no_gates = render_report([_run("ungated", 3, 0.0, gates=())])
    assert "No gates were set, so nothing passed or failed" in no_gates[:no_gates.index('id="how-to-read"')]


def test_render_needs_a_run_and_fmt():
    with pytest.raises(ValueError, match="at least one run"):
        render_report([])
    assert fmt(None) == "–" and fmt(float("nan")) == "–" and fmt(1234) == "1,234" and fmt(0.12345) == "0.123"


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Chromium (Debian package `chromium`) for a real browser render")
def test_report_renders_in_a_headless_browser(html_two, tmp_path):
    """Chromium (offline, no network) lays the report out: its screenshot is a full page of
    text and figures, not a blank or broken one."""
    from PIL import Image

    page = tmp_path / "report.html"
    page.write_text(html_two)
    shot = tmp_path / "shot.png"
    r = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1280,3000", f"--screenshot={shot}", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and shot.exists(), r.stderr[-2000:]
    im = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert im.shape == (3000, 1280)
    bands = im.reshape(30, 100, 1280)
    inked = [(b < 200).mean() for b in bands]  # share of dark pixels in each 100-px band
    assert sum(x > 0.005 for x in inked) >= 25  # text or figures all the way down the page
    assert im.std() > 20  # not a uniform (blank or error) page
