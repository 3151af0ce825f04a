"""The audit's HTML section and its insertion into another page."""

from __future__ import annotations

from debias.lm.report import append_sections, audit_section


def _metrics():
    return {"model": "m<x>", "suites": {
        "crows_pairs": {"score": "logprob_sum", "by_bias_type": [
            {"bias_type": "overall", "stereotype_score": 62.5, "ci_low": 40.0, "ci_high": 80.0, "n": 4},
            {"bias_type": "age", "stereotype_score": None, "ci_low": None, "ci_high": None, "n": 0}]},
        "counterfactual": {"skipped": "no classifier"}}}


def test_section_escapes_and_shows_estimates_with_intervals_and_missing_values():
    html = audit_section(_metrics(), gates=[{"expr": "stereotype_score<50", "value": 62.5, "passed": False}],
                         title="Audit — a")
    assert html.startswith("<section><h2>Audit — a</h2>") and html.endswith("</section>")
    assert "m&lt;x&gt;" in html and "m<x>" not in html
    assert "62.5 <span class='ci'>[40.0, 80.0]</span>" in html
    assert "stereotype_score&lt;50" in html and "<td>no</td>" in html
    assert "– <span class='ci'>[–, –]</span>" in html          # a NaN/None estimate is a dash, not "nan"
    assert "skipped: no classifier" in html


def test_append_sections_goes_before_the_closing_body():
    page = "<html><body><p>a</p></body></html>"
    out = append_sections(page, ["<section>S1</section>", "<section>S2</section>"])
    assert out.index("<p>a</p>") < out.index("S1") < out.index("S2") < out.index("</body>")
    assert out.endswith("</body></html>") and ".ci{" in out
    assert append_sections(page, []) == page
    assert append_sections("<p>no body</p>", ["<section>S</section>"]).endswith("<section>S</section>")


def test_translation_section_and_summary_line():
    import pandas as pd

    from debias.lm.audit import json_safe, summary_lines
    from debias.lm.translation import translation_scores

    judged = pd.DataFrame({"lang": "de", "source": "winogender", "gold": ["male", "female", "female"],
                           "pred": ["male", "unknown", "female"], "reason": ["", "not_found", ""],
                           "correct": [1.0, 0.0, 1.0], "stereotype": "none"})
    suites = json_safe({"translation": {"translator": "file", "languages": ["de"],
                                        "by_language": translation_scores(judged, n_boot=0, excluded={"de": 2})}})
    html = audit_section({"model": "m", "suites": suites})
    assert "WinoMT" in html and "<code>file</code>" in html
    assert "66.7 <span class='ci'>[–, –]</span>" in html       # 2 of 3 right, no interval at n_boot=0
    assert "<td>0 / 0 / 0 / 1 / 0 / 0</td>" in html           # one output without the occupation
    assert summary_lines(suites) == ["translation de: accuracy 66.7 [nan, nan] dG 33.3 dS nan unknown 0.333 (n=3)"]
