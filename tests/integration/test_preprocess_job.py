"""`debias preprocess` on a real local Ray against the same stage functions in one process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from debias.config import load_config
from debias.corpus.local import run_local
from debias.corpus.pii import KINDS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]

GOOD = [
    "women are great engineers", "the muslim family next door is kind", "gay people deserve respect",
    "he is a good father and a good man", "I met a black doctor today", "old people are wise",
    "you are an idiot", "this movie was terrible", "what a lovely day", "she said her idea was brilliant",
    "christian and jewish neighbours shared dinner", "the deaf student won the prize",
]


def _messy_corpus(path: Path) -> dict[str, int]:
    rows = []
    for i in range(240):
        base = GOOD[i % len(GOOD)]
        rows.append((f"r{i:04d}", f"{base} number {i} &amp; <b>more</b> see https://x.example/{i}", str(i % 3 == 0)))
    # 10 exact duplicates of earlier rows (after cleaning), with new ids
    for i in range(10):
        rows.append((f"d{i:04d}", rows[i][1].replace("number", "number"), rows[i][2]))
    rows += [("n1", "", "1"), ("n2", "   ", "0"), ("bad1", "fine text", "unknown"), ("bad2", "x" * 3000, "1")]
    df = pd.DataFrame(rows, columns=["id", "comment", "toxic"])
    df["toxic"] = df["toxic"].map({"True": "1", "False": "0"}).fillna(df["toxic"])
    body = df.to_csv(index=False).encode()
    # one row whose text is not UTF-8
    body += b'u1,"caf\xe9 ol\xe9",1\n'
    path.write_bytes(body)
    return {"rows": len(df) + 1, "dups": 10}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus")
    info = _messy_corpus(d / "comments.csv")
    return d / "comments.csv", info


def _cfg(path: Path, **sets):
    overrides = [f"{k}={v}" for k, v in sets.items()]
    return load_config(base={"data": {"path": str(path), "text_col": "comment", "label_col": "toxic",
                                      "id_col": "id"},
                             "clean": {"max_chars": 2000}}, overrides=overrides)


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    # Every g_<group> flag too: the job rebuilds them from `groups` in its final pass.
    flags = sorted(c for c in df.columns if c.startswith("g_"))
    assert len(flags) > 10
    cols = ["id", "text", "label", "split", "sample_weight", "pair_id", "is_augmented", *flags]
    out = df[cols].copy()
    out["groups"] = df["groups"].map(lambda g: ",".join(sorted(list(g))))
    return out.sort_values("id").reset_index(drop=True)


def _read_output(run: Path) -> pd.DataFrame:
    parts = [pd.read_parquet(run / "preprocess" / s).assign(split=s) for s in ("train", "val", "test")
             if any((run / "preprocess" / s).glob("*.parquet"))]
    return pd.concat(parts, ignore_index=True)


@pytest.mark.parametrize("strategy,augment", [("reweight", "append"), ("hybrid", "none")])
def test_preprocess_matches_single_process_and_accounts_for_every_row(ray_local, tmp_path, corpus,
                                                                      strategy, augment):
    from jobs import preprocess

    path, info = corpus
    cfg = _cfg(path, **{"balance.strategy": strategy, "augment.mode": augment})
    run = tmp_path / "run"
    preprocess.run(cfg, str(run))

    manifest = json.loads((run / "preprocess" / "manifest.json").read_text())
    rows = manifest["rows"]
    assert rows["read"] == info["rows"]
    assert rows["read"] == rows["kept"] + rows["rejected"] + rows["duplicates"]
    assert rows["duplicates"] == info["dups"]
    reasons = manifest["reject_reasons"]
    assert sum(reasons.values()) == rows["rejected"] == 5
    assert "unknown_label" in reasons
    assert "text_too_long" in reasons
    assert "undecodable_text" in reasons
    assert all(":" not in r for r in reasons)  # bare codes, no raw values
    pii = manifest["pii_masked"]  # every kind switched on by default, each a count
    assert sorted(pii) == sorted(KINDS) and all(isinstance(n, int) and n >= 0 for n in pii.values())

    rejects = pd.read_parquet(run / "preprocess" / "rejects")
    assert sorted(rejects["id"]) == ["bad1", "bad2", "n1", "n2", "u1"]

    out = _read_output(run)
    assert len(out) == rows["output"] == sum(rows["by_split"].values())
    assert not out["text"].str.contains("https://").any() and out["text"].str.contains(r"\[URL\]").any()

    # The oracle: the same stage functions on one pandas frame.
    raw = pd.read_csv(path, dtype=str, encoding="latin-1", keep_default_na=False)
    raw["comment"] = [c.encode("latin-1") for c in raw["comment"]]
    raw["path"] = str(path)
    local = run_local(raw, cfg=cfg.model_dump())
    pd.testing.assert_frame_equal(_sorted(out), _sorted(local["output"]), check_dtype=False)

    train = out[out["split"] == "train"]
    if strategy == "reweight":
        orig = train[~train["is_augmented"]]
        assert orig["sample_weight"].mean() == pytest.approx(1.0)
        paired = out[out["pair_id"].notna()]
        assert (paired.groupby("pair_id")["split"].nunique() == 1).all()
        assert out["is_augmented"].sum() == rows["output"] - rows["kept"]
    else:
        assert (train["sample_weight"] == 1.0).all()
    assert (out.loc[out["split"] != "train", "sample_weight"] == 1.0).all()

    audit = json.loads((run / "preprocess" / "audit.json").read_text())
    assert audit  # written; its content is unit-tested in tests/unit/corpus/test_audit.py
    assert (run / "preprocess" / "audit.md").read_text().strip()

    if strategy == "reweight":
        # Rerunning replaces the output instead of adding files to it.
        preprocess.run(cfg, str(run))
        again = _read_output(run)
        assert len(again) == len(out)
        assert sorted(p.name for p in run.iterdir()) == ["preprocess"]


def test_cli_reports_bad_config_before_ray(tmp_path, corpus):
    path, _ = corpus
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"data: {{path: {path}, text_col: text, label_col: toxic}}\n")
    r = subprocess.run([sys.executable, "-m", "jobs.cli", "preprocess", "--config", str(cfg),
                        "--run-dir", str(tmp_path / "r")], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2
    assert "missing column 'text'" in r.stderr and "columns present: id, comment, toxic" in r.stderr
    r = subprocess.run([sys.executable, "-m", "jobs.cli", "preprocess", "--config", str(cfg),
                        "--set", "clean.max_char=3", "--run-dir", str(tmp_path / "r")],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert r.returncode == 2 and "clean.max_char: unknown key" in r.stderr
    assert not (tmp_path / "r").exists()


def test_row_ref_collision_falls_back_to_the_full_row_shuffle(ray_local, tmp_path, corpus, monkeypatch, capsys):
    """Two rows of one key sharing a row ref (only a duplicated input block causes it, which a
    test cannot arrange reliably through Ray Data's block boundaries): the collision report is
    injected into the real pass, and the job must switch to the full-row shuffle and still give
    the single-process rows and counts."""
    from debias.corpus import dedup as D
    from jobs import preprocess

    real = D.dedup_counts

    def reporting_a_collision(df):
        out = real(df)
        extra = out.iloc[:0].copy()
        extra.loc[0, "kind"] = "collision"
        return pd.concat([out, extra], ignore_index=True).astype(out.dtypes.to_dict())

    monkeypatch.setattr(preprocess, "dedup_counts", reporting_a_collision)
    path, info = corpus
    cfg = _cfg(path, **{"balance.strategy": "reweight", "augment.mode": "none"})
    run = tmp_path / "run"
    preprocess.run(cfg, str(run))
    assert "full-row shuffle instead" in capsys.readouterr().err
    rows = json.loads((run / "preprocess" / "manifest.json").read_text())["rows"]
    assert rows["duplicates"] == info["dups"] and rows["read"] == info["rows"]
    raw = pd.read_csv(path, dtype=str, encoding="latin-1", keep_default_na=False)
    raw["comment"] = [c.encode("latin-1") for c in raw["comment"]]
    raw["path"] = str(path)
    local = run_local(raw, cfg=cfg.model_dump())
    pd.testing.assert_frame_equal(_sorted(_read_output(run)), _sorted(local["output"]), check_dtype=False)


def _parquet_corpus(folder: Path) -> pd.DataFrame:
    """Four parquet files (so Ray reads one block per file, no repartition), with duplicates
    within and across files and two rows to reject."""
    folder.mkdir()
    rows = [(f"p{i:04d}", f"{GOOD[i % len(GOOD)]} {i % 50}", str(i % 4 == 0)) for i in range(200)]
    rows += [("e1", "", "1"), ("e2", "fine text", "maybe")]
    df = pd.DataFrame(rows, columns=["id", "comment", "toxic"])
    for k in range(4):
        df.iloc[k::4].to_parquet(folder / f"part-{k}.parquet", index=False)
    return df


def test_an_input_block_read_twice_is_redone_from_the_prepared_rows(ray_local, tmp_path, monkeypatch, capsys):
    """The prepare tasks' side outputs (rejects, dedup keys) are named by their block, so two
    identical blocks write one file. Caused for real: the input is read twice. The row count
    check must notice, rewrite the rejects from the prepared rows and de-duplicate by the
    full-row shuffle, giving what one process gives on the doubled input."""
    from jobs import preprocess

    df = _parquet_corpus(tmp_path / "pq")
    real_read = preprocess.read_dataset
    monkeypatch.setattr(preprocess, "read_dataset", lambda spec, cfg: real_read(spec, cfg).union(real_read(spec, cfg)))
    cfg = _cfg(tmp_path / "pq", **{"balance.strategy": "reweight", "augment.mode": "none"})
    run = tmp_path / "run"
    preprocess.run(cfg, str(run))
    assert "full-row shuffle instead" in capsys.readouterr().err
    rows = json.loads((run / "preprocess" / "manifest.json").read_text())["rows"]
    assert rows["read"] == 2 * len(df) == rows["kept"] + rows["rejected"] + rows["duplicates"]
    assert rows["rejected"] == 4
    assert sorted(pd.read_parquet(run / "preprocess" / "rejects")["id"]) == ["e1", "e1", "e2", "e2"]
    raw = pd.concat([pd.read_parquet(f).assign(path=str(f)) for f in sorted((tmp_path / "pq").glob("*.parquet"))] * 2,
                    ignore_index=True)
    local = run_local(raw, cfg=cfg.model_dump())
    assert rows["duplicates"] == local["n_duplicates"]
    pd.testing.assert_frame_equal(_sorted(_read_output(run)), _sorted(local["output"]), check_dtype=False)


def test_without_dedup_every_row_is_kept_or_rejected(ray_local, tmp_path):
    from jobs import preprocess

    df = _parquet_corpus(tmp_path / "pq")
    cfg = _cfg(tmp_path / "pq", **{"clean.dedup": "false", "augment.mode": "none"})
    run = tmp_path / "run"
    preprocess.run(cfg, str(run))
    rows = json.loads((run / "preprocess" / "manifest.json").read_text())["rows"]
    assert rows["duplicates"] == 0 and rows["rejected"] == 2
    assert rows["read"] == len(df) == rows["kept"] + 2 and rows["output"] == rows["kept"]
    assert sorted(pd.read_parquet(run / "preprocess" / "rejects")["id"]) == ["e1", "e2"]
