"""`debias audit-lm` end to end: the Ray Data job on a tiny Llama, and endpoint mode over HTTP."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from debias.config import load_config
from debias.lm.audit import resolve_data_dir
from debias.lm.config import AuditLMConfig
from debias.lm.intrinsic import stereotype_scores

pytestmark = [pytest.mark.integration, pytest.mark.slow]
DATA = resolve_data_dir(AuditLMConfig())
if not all((DATA / d).is_dir() for d in ("crows-pairs", "stereoset", "bbq")):
    pytest.skip(f"shared data sets not found under {DATA}", allow_module_level=True)


def _cfg(model, classifier, **extra):
    sets = [f"audit_lm.model={model}", f"audit_lm.classifier={classifier}", "audit_lm.limit=4",
            "audit_lm.n_boot=20", "audit_lm.max_new_tokens=4", "audit_lm.bbq_max_new_tokens=3",
            "audit_lm.cpus_per_actor=1", "audit_lm.cf_template_sets=[statements]",
            *[f"audit_lm.{k}={v}" for k, v in extra.items()]]
    return load_config(None, sets, base={"data": {"path": "demo:100"}})


def test_ray_job_writes_outputs_and_gates(ray_local, tiny_llama_dir, tiny_model_dir, tmp_path):
    from jobs import audit_lm

    run_dir = str(tmp_path / "run")
    cfg = _cfg(tiny_llama_dir, tiny_model_dir)
    manifest = audit_lm.run(cfg, run_dir, gates=["crows_pairs:stereotype_deviation<=50", "refusal_rate<0"])
    out = tmp_path / "run" / "audit_lm"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["suites"]) == {"crows_pairs", "stereoset_intrasentence", "stereoset_intersentence",
                                      "bbq_mc", "bbq_generate", "counterfactual"}
    scored = pd.read_parquet(out / "scored.parquet")
    generated = pd.read_parquet(out / "generated.parquet")
    assert scored["id"].is_unique and len(scored) == manifest["rows"]["scored"] == 4 * 2 + 4 * 3 * 2 + 4 * 3
    assert scored["n_tokens"].gt(0).all()
    # the job's CrowS score, recomputed from its own per-row output
    again = stereotype_scores(scored[scored.suite == "crows_pairs"].assign(bias_type="x"), n_boot=0)[0]
    assert metrics["suites"]["crows_pairs"]["by_bias_type"][0]["stereotype_score"] == pytest.approx(
        again["stereotype_score"])
    cf = generated[generated.suite == "counterfactual"]
    assert cf["classifier_score"].between(0, 1).all() and len(cf) == manifest["rows"]["counterfactual"]
    assert [g["passed"] for g in manifest["gates"]] == [True, False]
    t = manifest["timings_s"]
    assert t["total_s"] >= t["score_s"] + t["generate_s"] > 0
    assert (out / "report.html").read_text().count("<table>") >= 6
    # `debias report` adds the audit (with the manifest's gate results) to the fairness report
    from jobs import report

    page = report._with_lm_audits("<html><body><h1>fairness</h1></body></html>", [run_dir], ["run"])
    assert page.index("<h1>fairness</h1>") < page.index("Generative model audit — run") < page.index("</body>")
    assert "refusal_rate&lt;0" in page and page.count("<table>") >= 7


def test_endpoint_mode_resumes_from_cache(tiny_llama_dir, tiny_model_dir, tmp_path):
    import httpx

    from debias.lm.openai_server import build_app, serve_in_thread
    from jobs import audit_lm

    srv, thread, port = serve_in_thread(build_app(str(tiny_llama_dir), model_name="tiny"))
    try:
        cfg = _cfg(tiny_llama_dir, tiny_model_dir, **{"endpoint.base_url": f"http://127.0.0.1:{port}/v1",
                                                       "endpoint.model": "tiny", "endpoint.concurrency": 4,
                                                       "suites": "[crows_pairs,bbq]"})
        first = audit_lm.run(cfg, str(tmp_path / "run"))
        served = httpx.get(f"http://127.0.0.1:{port}/stats").json()
        assert first["endpoint_stats"]["sent"] == sum(served.values()) == 4 * 2 + 4 * 3 + 4
        second = audit_lm.run(cfg, str(tmp_path / "run"))
        assert second["endpoint_stats"]["sent"] == 0
        assert httpx.get(f"http://127.0.0.1:{port}/stats").json() == served
        m = json.loads((tmp_path / "run" / "audit_lm" / "metrics.json").read_text())
        assert set(m["suites"]) == {"crows_pairs", "bbq_mc", "bbq_generate"}
    finally:
        srv.should_exit = True
        thread.join(10)


def test_cli_exit_codes(ray_local, tiny_llama_dir, tmp_path, capsys):
    from jobs.cli import main

    args = ["audit-lm", "--run-dir", str(tmp_path / "run"), "--set", f"audit_lm.model={tiny_llama_dir}",
            "--set", "audit_lm.suites=[crows_pairs]", "--set", "audit_lm.limit=3", "--set", "audit_lm.n_boot=0",
            "--set", "audit_lm.cpus_per_actor=1"]
    # a typo in a gate fails in preflight, before any scoring, with the usage-error code
    assert main([*args, "--gate", "stereotype_deviaton<=10"]) == 2
    assert "stereotype_deviaton" in capsys.readouterr().err
    assert not (tmp_path / "run" / "audit_lm").exists()
    # a failing gate: outputs are written and the exit code is 1
    assert main([*args, "--gate", "crows_pairs:stereotype_deviation<0"]) == 1
    assert "gate FAILED" in capsys.readouterr().err
    assert (tmp_path / "run" / "audit_lm" / "metrics.json").is_file()
