"""The synthetic demo corpus: deterministic, dirty enough to exercise cleaning, and biased in
the sample (identity <-> label) while the label is a function of the template alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.corpus.audit import log_odds_ratio
from debias.corpus.demo import BOOSTED_GROUPS, generate_demo_corpus, write_demo_corpus


@pytest.fixture(scope="module")
def corpus() -> pd.DataFrame:
    return generate_demo_corpus(5000, seed=0, with_meta=True)


def test_deterministic_for_a_seed_and_different_across_seeds():
    a = generate_demo_corpus(600, seed=3)
    pd.testing.assert_frame_equal(a, generate_demo_corpus(600, seed=3))
    b = generate_demo_corpus(600, seed=4)
    assert (a["text"] != b["text"]).mean() > 0.9


def test_size_columns_and_ids(corpus):
    plain = generate_demo_corpus(1234, seed=1)
    assert list(plain.columns) == ["id", "text", "toxic"] and len(plain) == 1234
    assert plain["id"].is_unique and plain["id"].str.match(r"^demo-\d{6}$").all()
    assert len(corpus) == 5000
    assert len(generate_demo_corpus(0)) == 0 and len(generate_demo_corpus(1)) == 1
    with pytest.raises(ValueError, match="n_rows"):
        generate_demo_corpus(-1)


def test_labels_and_dirt(corpus):
    n = len(corpus)
    good = corpus["toxic"].isin(["0", "1"])
    # ~0.5% unusable labels, ~0.5% empty texts: about 1% bad rows in all.
    assert 0.003 * n <= (~good).sum() <= 0.008 * n
    blank = corpus["text"].isna() | (corpus["text"].fillna("").str.strip().isin(["", "&nbsp;"]))
    assert 0.003 * n <= blank.sum() <= 0.008 * n
    # 2% copied rows plus a little chance collision between short templates.
    assert 0.02 * n <= corpus.duplicated("text").sum() <= 0.04 * n
    dups = corpus[corpus["dirt"] == "duplicate"]
    first = corpus.drop_duplicates("text").set_index("text")
    assert (dups["toxic"].to_numpy() == first.loc[dups["text"], "toxic"].to_numpy()).all()
    text = corpus["text"].fillna("")
    for pattern in [r"<p>|<br>", r"&amp;|&quot;", r"https?://", r"@user_\d+", r"\w+@example\.com", "\n"]:
        assert text.str.contains(pattern, regex=True).sum() >= 0.002 * n, pattern
    # Most rows are clean.
    assert (corpus["dirt"] == "").mean() > 0.75


def test_true_label_is_a_function_of_the_template_only(corpus):
    ok = corpus[corpus["toxic"].isin(["0", "1"])]
    per_template = ok.groupby("template")["template_toxic"].nunique()
    assert (per_template == 1).all()
    assert ((ok["template"].str[0] == "x") == (ok["template_toxic"] == 1)).all()
    # Every template is seen both with identity terms and with neutral ones, and its label is
    # the same either way: in truth the label does not depend on the identity term.
    seen = ok.assign(has_id=ok["identity_group"].notna()).groupby("template")["has_id"].nunique()
    assert (seen == 2).all()


def test_observed_label_carries_annotator_bias_only_for_boosted_groups(corpus):
    ok = corpus[corpus["toxic"].isin(["0", "1"]) & (corpus["template_toxic"] == 0)]
    flipped = ok["toxic"].astype(int) == 1
    boosted = ok["identity_group"].isin(list(BOOSTED_GROUPS))
    # civil comments: ~2% noise for everyone, ~25% more for the boosted groups
    assert flipped[~boosted].mean() < 0.05
    assert 0.15 < flipped[boosted].mean() < 0.40


def test_identity_mentions_and_sample_bias(corpus):
    ok = corpus[corpus["toxic"].isin(["0", "1"])]
    assert 0.36 <= ok["identity_group"].notna().mean() <= 0.44
    y = ok["toxic"].astype(int).to_numpy()

    def lor(group: str) -> dict:
        m = (ok["identity_group"] == group).to_numpy()
        return log_odds_ratio(
            (m & (y == 1)).sum(), (m & (y == 0)).sum(), (~m & (y == 1)).sum(), (~m & (y == 0)).sum()
        )

    for g in ["gay", "muslim"]:
        r = lor(g)
        assert r["log_odds_ratio"] > 0.4 and r["ci_low"] > 0, (g, r)
    boosted = np.mean([lor(g)["log_odds_ratio"] for g in BOOSTED_GROUPS])
    plain = np.mean([lor(g)["log_odds_ratio"] for g in ["male", "christian", "white", "elderly", "asian"]])
    assert boosted - plain > 0.6


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_write_round_trip(tmp_path, suffix):
    path = write_demo_corpus(tmp_path / "sub" / f"demo{suffix}", n_rows=300, seed=2)
    assert path.exists() and not list(path.parent.glob(".*tmp*"))
    expected = generate_demo_corpus(300, seed=2)
    if suffix == ".parquet":
        pd.testing.assert_frame_equal(pd.read_parquet(path), expected, check_dtype=False)
    else:
        back = pd.read_csv(path, dtype=str, keep_default_na=False)
        assert back["id"].tolist() == expected["id"].tolist()
        assert back["text"].tolist() == expected["text"].fillna("").tolist()


def test_write_rejects_unknown_extension(tmp_path):
    with pytest.raises(ValueError, match="must end in .parquet"):
        write_demo_corpus(tmp_path / "demo.xlsx", n_rows=10)
