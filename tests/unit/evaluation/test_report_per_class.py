"""The report's per-class section, from metrics the evaluation's own functions measured on a
small synthetic 3-class run: the class names of the run, every value as the metrics hold it,
the maximum over classes highlighted, and nothing of it in a binary run's report."""

from __future__ import annotations

import html as html_lib
import re

import numpy as np
import pandas as pd
import pytest

from debias.evaluation.measure import attach_scores, focus_labels, measure_suites, with_predictions
from debias.evaluation.report import RunInput, fmt, render_report
from debias.evaluation.report.per_class import per_class_context
from debias.metrics import to_json_safe
from jobs.report import binary_reading

CLASSES = ("hate", "offensive", "neither")
KINDS = {"test": "test_split", "counterfactual": "counterfactual_pairs"}
MIN_GROUP = 10


def _frames(n_classes: int, seed: int = 0) -> dict[str, pd.DataFrame]:
    """A labelled test suite and a counterfactual pair suite, scored by a model that leans
    towards class 1 on rows about 'muslim' (so per-class gaps differ between classes)."""
    rng = np.random.default_rng(seed)
    n = 150
    groups = [["female"] if i % 3 == 0 else (["muslim"] if i % 3 == 1 else []) for i in range(n)]
    y = rng.integers(0, n_classes, n)
    logits = 2.0 * np.eye(n_classes)[y] + rng.normal(0, 1, (n, n_classes))
    logits[:, 1] += np.array([1.5 if g == ["muslim"] else 0.0 for g in groups])
    test = pd.DataFrame({"id": [f"t{i}" for i in range(n)], "text": ["a text"] * n, "y_true": y,
                         "groups": groups, "pair_id": None})
    m = 40
    pid = [f"p{i // 2}" for i in range(m)]
    yc = np.repeat(rng.integers(0, n_classes, m // 2), 2)
    cf_logits = 1.0 * np.eye(n_classes)[yc] + rng.normal(0, 1, (m, n_classes))
    cf_logits[1::2, 1] += 1.0  # the swapped copy leans towards class 1
    cf = pd.DataFrame({"id": [f"{p}~cf" if i % 2 else p for i, p in enumerate(pid)], "text": ["a pair"] * m,
                       "y_true": yc, "groups": [["male"] if i % 2 == 0 else ["female"] for i in range(m)],
                       "pair_id": pid, "is_augmented": [bool(i % 2) for i in range(m)]})
    z = np.vstack([logits, cf_logits])
    proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    focus = 1
    return attach_scores({"test": test, "counterfactual": cf}, proba[:, focus],
                         proba=proba if n_classes > 2 else None)


def _run(classes: tuple[str, ...], name: str) -> RunInput:
    """What ``jobs.evaluate`` writes to metrics.json for this run, through the same functions."""
    frames = focus_labels(_frames(len(classes)), KINDS, focus=1, n_classes=len(classes))
    frames = with_predictions(frames, 0.5)
    measured = measure_suites(frames, KINDS, [], threshold=0.5, n_boot=20, min_group_size=MIN_GROUP, seed=0,
                              classes=list(classes))
    doc = to_json_safe({"model_dir": "/models/x", "threshold": 0.5, "classes": list(classes),
                        "focus_class": classes[1], "suites": measured["metrics"],
                        "gate_values": measured["values"], "gates": measured["gates"], "worst_cases": []})
    return RunInput(name=name, run_dir=f"/runs/{name}", metrics=doc,
                    evaluate_manifest={"config": {"threshold": 0.5, "min_group_size": MIN_GROUP}})


@pytest.fixture(scope="module")
def multi():
    run = _run(CLASSES, "three")
    return run, render_report([run], class_names=binary_reading(CLASSES, CLASSES[1]))


def _section(html: str, suite: str) -> str:
    start = html.index(f'id="run-1-suite-{suite}-per-class"')
    end = html.find("<h3", start)
    return html_lib.unescape(html[start:end if end > 0 else len(html)])


def _cells(row_html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row_html, re.S)]


def test_per_class_table_names_the_run_classes_and_shows_their_values(multi):
    run, html = multi
    for suite in KINDS:
        block = run.metrics["suites"][suite]["multiclass"]
        sec = _section(html, suite)
        assert "Per-class fairness" in sec
        assert ", ".join(f"<i>{c}</i>" for c in CLASSES) in sec
        assert "read <i>offensive</i> against the rest" in sec  # the focus class, from metrics.json
        rows = re.findall(r"<tr><td>(.*?)</tr>", sec.split("<table>")[1], re.S)
        per_class = [_cells(f"<td>{r}") for r in rows]  # the max row is <tr class="max">, read below
        assert [c[0].replace(" focus class", "") for c in per_class] == list(CLASSES)
        crit = block["criteria"]
        def shown(rec, col):  # the value and its 95% interval, both from metrics.json
            return f"{fmt(rec[col])} [{fmt(rec[col + '_lo'])}, {fmt(rec[col + '_hi'])}]"

        for cells, rec in zip(per_class, crit[:-1], strict=True):
            assert cells[1:] == [shown(rec, "demographic_parity_difference"), shown(rec, "equalized_odds_difference")]
            assert rec["demographic_parity_difference_lo"] <= rec["demographic_parity_difference"] \
                <= rec["demographic_parity_difference_hi"]
        top = crit[-1]
        assert top["class"] == "max"
        mx = _cells(re.search(r'<tr class="max">(.*?)</tr>', sec, re.S).group(1))
        assert mx[0] == "max over classes"
        for cell, col in zip(mx[1:], ("demographic_parity_difference", "equalized_odds_difference"), strict=True):
            worst = [c for c, r in zip(CLASSES, crit[:-1], strict=True) if r[col] == top[col]]
            assert top[col] == max(r[col] for r in crit[:-1])  # the measured max is the worst class
            assert cell == f"{shown(top, col)} ({', '.join(worst)})"


def test_the_worst_class_cell_is_highlighted(multi):
    run, html = multi
    sec = _section(html, "test")
    crit = run.metrics["suites"]["test"]["multiclass"]["criteria"]
    table = sec.split("<table>")[1].split("</table>")[0]
    highlighted = re.findall(r'<td class="num worst">([^<]+)</td>', table)
    expected = [f"{fmt(r[col])} [{fmt(r[col + '_lo'])}, {fmt(r[col + '_hi'])}]"
                for col in ("demographic_parity_difference", "equalized_odds_difference")
                for r in crit[:-1] if r[col] == crit[-1][col]]
    assert sorted(highlighted) == sorted(expected) and len(highlighted) >= 2  # one worst class per criterion
    assert table.count('<span class="badge">focus class</span>') == 1


def test_accuracy_and_macro_f1_by_group_rows(multi):
    run, html = multi
    sec = _section(html, "test")
    by = run.metrics["suites"]["test"]["multiclass"]["by_group"]
    table = sec[sec.index("Accuracy and macro-F1 by group"):]
    table = table[:table.index("</table>")]
    shown = {c[0].replace(" (small)", ""): c[1:] for c in
             (_cells(r) for r in re.findall(r"<tr[^>]*>(<td.*?)</tr>", table, re.S))}
    expected = {("all rows" if r["group"] == "overall" else r["group"]):
                [fmt(r["count"]), fmt(r["accuracy"]), fmt(r["macro_f1"])] for r in by}
    assert shown == expected and {"female", "muslim", "all rows"} <= set(shown)


def test_pair_suite_shows_flip_rate_and_tv_gaps(multi):
    run, html = multi
    cf = run.metrics["suites"]["counterfactual"]["multiclass"]["counterfactual"]
    assert cf["n_pairs"] == 20
    sec = _section(html, "counterfactual")
    for label, key in (("argmax flip rate", "flip_rate"), ("Mean total-variation gap", "mean_tv_gap"),
                       ("Largest total-variation gap", "max_tv_gap"), ("Pairs", "n_pairs")):
        row = re.search(rf"<tr><td>[^<]*{label}[^<]*</td><td class=\"num\">([^<]*)</td><td>([^<]*)</td></tr>", sec)
        assert row and row.group(1) == fmt(cf[key]), label
        assert row.group(2) == ("a count" if key == "n_pairs" else "lower is better")
    assert "total-variation" not in _section(html, "test")  # a labelled suite has no pairs


def test_words_follow_the_run_classes(multi):
    _, html = multi
    assert "toxic" not in html.lower()


def test_binary_run_has_no_per_class_section():
    run = _run(("negative", "positive"), "two")
    assert all("multiclass" not in s for s in run.metrics["suites"].values())
    html = render_report([run], class_names=("negative", "positive"))
    body = html.split("</style>")[1]
    assert "Per-class fairness" not in body and "-per-class" not in body
    assert 'class="num worst"' not in body and '<tr class="max">' not in body


def test_per_class_context_checks_the_block():
    assert per_class_context(None, suite="s") is None
    run = _run(CLASSES, "three")
    block = run.metrics["suites"]["test"]["multiclass"]
    ctx = per_class_context(block, suite="test", classes=list(CLASSES))
    assert [r["name"] for r in ctx["criteria"]] == list(CLASSES) and ctx["focus"] is None
    with pytest.raises(ValueError, match="names the classes a, b, c but suite 'test' was measured for hate"):
        per_class_context(block, suite="test", classes=["a", "b", "c"])
    with pytest.raises(ValueError, match="expected 4 per-class criteria rows"):
        per_class_context({**block, "criteria": block["criteria"][:-1]}, suite="test")


def test_lowest_auc_per_class_table(multi):
    run, html = multi
    sec = _section(html, "test")
    aucs = run.metrics["suites"]["test"]["multiclass"]["bias_auc"]
    table = sec[sec.index("Lowest AUCs per class"):]
    table = table[:table.index("</table>")]
    rows = [_cells(r) for r in re.findall(r"<tr>(<td.*?)</tr>", table, re.S)]
    assert [r[0] for r in rows] == [a["class"] for a in aucs] == list(CLASSES)
    for cells, a in zip(rows, aucs, strict=True):
        assert cells[1:] == [f"{fmt(a['min_' + m])} ({a['min_' + m + '_group'] or '–'})"
                             for m in ("subgroup_auc", "bpsn_auc", "bnsp_auc")]
