"""Suites load and fill correctly; bad external files give clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from debias.config import SuiteConfig
from debias.evaluation.suites import (
    CORE_COLUMNS,
    FORM_SLOTS,
    SLOT,
    Template,
    counterfactual_pairs,
    fill_templates,
    find_slots,
    from_split,
    has_labels,
    load_labelled_file,
    load_minimal_pairs,
    load_templates,
)


def test_packaged_templates_have_both_variants_and_one_slot():
    tpls = load_templates()
    assert {t.set_name for t in tpls} >= {"statements", "conversation"}
    for t in tpls:
        assert len(find_slots(t.neutral)) == 1 and len(find_slots(t.toxic)) == 1
        assert SLOT not in t.slots and all(s in FORM_SLOTS for s in t.slots)  # packaged: grammatical forms only
        assert t.neutral != t.toxic


def test_fill_templates_every_term_both_variants():
    tpls = [Template("s", "a", "I am {term}.", "I hate {term}."),
            Template("s", "b", "Hi {term}", "Die {term}")]
    terms = {"female": ["woman", "women"], "muslim": ["muslim"], "queer": ["queer"],
             "gay": ["gay", "queer"]}
    df = fill_templates(tpls, terms, axes={"female": "gender", "muslim": "religion",
                                           "queer": "sexual_orientation", "gay": "sexual_orientation"})
    assert list(df.columns[: len(CORE_COLUMNS)]) == list(CORE_COLUMNS)
    # 2 templates x 2 variants x 5 distinct terms (queer listed twice)
    assert len(df) == 2 * 2 * 5
    assert df["id"].is_unique
    row = df[(df["template"] == "s/a") & (df["variant"] == "toxic") & (df["term"] == "women")].iloc[0]
    assert row["text"] == "I hate women." and row["y_true"] == 1 and row["groups"] == ["female"]
    q = df[(df["term"] == "queer")].iloc[0]
    assert q["groups"] == ["gay", "queer"]
    assert q["axis"] == "sexual_orientation"
    # the label is the variant, nothing else
    assert ((df["variant"] == "toxic") == (df["y_true"] == 1)).all()
    assert has_labels(df)


def test_load_templates_rejects_a_bad_set(tmp_path):
    (tmp_path / "bad.yaml").write_text("templates:\n  - {id: x, neutral: 'no slot', toxic: 'bad {term}'}\n")
    with pytest.raises(ValueError, match="neutral variant must contain"):
        load_templates(tmp_path)
    with pytest.raises(ValueError, match="unknown template set"):
        load_templates(tmp_path, sets=["nope"])


def test_labelled_file_with_mapping_and_groups(tmp_path):
    p = tmp_path / "m.csv"
    pd.DataFrame({"Text": ["hug gay", "kill gay", "hug straight"],
                  "Label": ["NOT_BAD", "BAD", "NOT_BAD"], "who": ["gay", "gay", ""]}).to_csv(p, index=False)
    cfg = SuiteConfig(name="madlibs", kind="labelled_file", path=str(p), text_col="Text",
                      label_col="Label", group_col="who", label_map={"BAD": 1, "NOT_BAD": 0})
    df = load_labelled_file(cfg)
    assert df["y_true"].tolist() == [0, 1, 0]
    assert df["groups"].tolist() == [["gay"], ["gay"], []]
    assert (df["suite"] == "madlibs").all()


def test_labelled_file_missing_column_is_a_clear_error(tmp_path):
    p = tmp_path / "m.csv"
    pd.DataFrame({"Text": ["a"], "Label": ["BAD"]}).to_csv(p, index=False)
    cfg = SuiteConfig(name="madlibs", kind="labelled_file", path=str(p), text_col="comment",
                      label_col="Label", group_col="who")
    with pytest.raises(ValueError) as e:
        load_labelled_file(cfg)
    msg = str(e.value)
    assert "'comment' (from text_col)" in msg and "'who' (from group_col)" in msg
    assert "columns present: Text, Label" in msg


def test_labelled_file_unmapped_labels_are_named(tmp_path):
    p = tmp_path / "m.csv"
    pd.DataFrame({"Text": ["a", "b"], "Label": ["BAD", "MEH"]}).to_csv(p, index=False)
    cfg = SuiteConfig(name="m", kind="labelled_file", path=str(p), text_col="Text", label_col="Label",
                      group_col=None, label_map={"BAD": 1})
    with pytest.raises(ValueError, match=r"\['MEH'\]"):
        load_labelled_file(cfg, annotate=lambda d: d.assign(groups=[[]] * len(d)))


def test_labelled_file_annotates_when_no_group_col(tmp_path):
    p = tmp_path / "m.tsv"
    pd.DataFrame({"t": ["i am gay", "hello"], "y": [0, 1]}).to_csv(p, sep="\t", index=False)
    cfg = SuiteConfig(name="m", kind="labelled_file", path=str(p), text_col="t", label_col="y")

    def annotate(d):
        return d.assign(groups=[["gay"] if "gay" in t else [] for t in d["text"]])

    df = load_labelled_file(cfg, annotate=annotate)
    assert df["groups"].tolist() == [["gay"], []]
    with pytest.raises(ValueError, match="set group_col, or give an annotator"):
        load_labelled_file(cfg)


def test_minimal_pairs_two_rows_per_pair(tmp_path):
    p = tmp_path / "crows.csv"
    pd.DataFrame({"sent_more": ["A is bad", "C is bad", "E"], "sent_less": ["B is bad", "D is bad", "F"],
                  "bias_type": ["race-color", "gender", "gender"]}).to_csv(p)
    cfg = SuiteConfig(name="crows", kind="minimal_pairs", path=str(p), pair_cols=["sent_more", "sent_less"],
                      group_col="bias_type", limit=2)
    df = load_minimal_pairs(cfg, seed=1)
    assert len(df) == 4 and df["pair_id"].nunique() == 2
    assert all(sorted(v) == ["first", "second"] for v in df.groupby("pair_id")["side"].agg(list))
    assert df["y_true"].isna().all() and not has_labels(df)
    first = df[df["side"] == "first"].set_index("pair_id")["text"]
    second = df[df["side"] == "second"].set_index("pair_id")["text"]
    src = pd.read_csv(p, index_col=0)
    for pid in first.index:
        i = int(pid.split("/")[1])
        assert first[pid] == src.loc[i, "sent_more"] and second[pid] == src.loc[i, "sent_less"]
    bad = SuiteConfig(name="crows", kind="minimal_pairs", path=str(p), pair_cols=["more", "sent_less"])
    with pytest.raises(ValueError, match=r"'more' \(from pair_cols\[0\]\)"):
        load_minimal_pairs(bad)


def test_from_split_and_counterfactual_pairs():
    split = pd.DataFrame({"id": ["a", "b", "c"], "text": ["he is rude", "the sky", "she is kind"],
                          "label": [1, 0, 0], "groups": [["male"], [], ["female"]]})
    s = from_split(split, suite="test")
    assert s["y_true"].tolist() == [1, 0, 0] and (s["suite"] == "test").all()

    swap = {"he": "she", "she": "he"}

    def make_pairs(df):  # a stand-in swapper with the augment contract: originals + ~cf rows
        rows = []
        for r in df.itertuples():
            rows.append({"id": r.id, "text": r.text, "label": r.label, "groups": r.groups, "pair_id": r.id,
                         "is_augmented": False})
            w = r.text.split()
            if w[0] in swap:
                rows.append({"id": r.id + "~cf", "text": " ".join([swap[w[0]], *w[1:]]), "label": r.label,
                             "groups": r.groups, "pair_id": r.id, "is_augmented": True})
        return pd.DataFrame(rows)

    cf = counterfactual_pairs(split, make_pairs=make_pairs, suite="cf")
    assert set(cf["pair_id"]) == {"a", "c"}  # 'b' has nothing to swap: no incomplete pair kept
    assert len(cf) == 4
    assert cf.loc[cf["id"] == "a~cf", "text"].item() == "she is rude"
    assert cf.groupby("pair_id")["y_true"].nunique().eq(1).all()


def _mp(gaps, types):
    rows = []
    for i, (g, t) in enumerate(zip(gaps, types, strict=True)):
        rows += [{"pair_id": f"m{i}", "side": "first", "bias_type": t, "y_score": 0.5 + g / 2},
                 {"pair_id": f"m{i}", "side": "second", "bias_type": t, "y_score": 0.5 - g / 2}]
    return pd.DataFrame(rows)


def test_minimal_pair_gaps_hand_worked():
    from debias.evaluation.suites import minimal_pair_gaps

    t = minimal_pair_gaps(_mp([0.2, -0.1, 0.3], ["gender", "gender", "race"]), n_boot=200, seed=0)
    t = t.set_index("bias_type")
    assert list(t.index) == ["all", "gender", "race"]
    assert t.loc["all", "n_pairs"] == 3
    assert t.loc["all", "mean_gap"] == pytest.approx(0.4 / 3)
    assert t.loc["all", "mean_abs_gap"] == pytest.approx(0.2)
    assert t.loc["all", "first_higher_rate"] == pytest.approx(2 / 3)
    assert t.loc["gender", "mean_gap"] == pytest.approx(0.05) and t.loc["race", "mean_gap"] == pytest.approx(0.3)
    assert t.loc["all", "mean_gap_lo"] <= t.loc["all", "mean_gap"] <= t.loc["all", "mean_gap_hi"]
    assert t.loc["all", "sign_test_p"] == pytest.approx(1.0)  # 2 of 3: binomial two-sided p = 1


def test_counterfactual_by_group_hand_worked():
    from debias.evaluation.suites import counterfactual_by_group

    df = pd.DataFrame({"pair_id": ["p0", "p0", "p1", "p1", "p2", "p2"],
                       "groups": [["male"], ["female"], ["male"], ["female"], ["muslim"], ["christian"]],
                       "y_score": [0.2, 0.6, 0.5, 0.5, 0.1, 0.4]})
    t = counterfactual_by_group(df).set_index("group")
    assert t.loc["female", "n_pairs"] == 2
    assert t.loc["female", "mean_abs_gap"] == pytest.approx(0.2)
    assert t.loc["female", "max_abs_gap"] == pytest.approx(0.4)
    assert t.loc["female", "flip_rate"] == pytest.approx(0.5)
    assert t.loc["muslim", "mean_abs_gap"] == pytest.approx(0.3) and t.loc["muslim", "flip_rate"] == 0
    assert list(t.index[:2]) == ["christian", "muslim"]  # worst gap first, ties by name


def test_suite_metrics_and_gate_values_against_sklearn():
    from sklearn.metrics import roc_auc_score

    from debias.evaluation.gates import metric_values
    from debias.evaluation.suites import suite_metrics

    rng = np.random.default_rng(3)
    n = 200
    groups = [["a"] if i % 4 == 0 else (["b"] if i % 4 == 1 else (["tiny"] if i == 2 else [])) for i in range(n)]
    y = rng.integers(0, 2, n)
    s = np.clip(0.3 * y + 0.7 * rng.random(n), 0, 1)
    df = pd.DataFrame({"y_true": pd.array(y, dtype="Int8"), "y_score": s, "y_pred": (s >= 0.5).astype("int8"),
                       "groups": groups})
    m = suite_metrics(df, kind="test_split", n_boot=20, min_group_size=10)
    v = metric_values(m, min_group_size=10)
    assert v["auc"] == pytest.approx(roc_auc_score(y, s))
    a = np.array([g == ["a"] for g in groups])
    neg = a & (y == 0)
    assert v["fpr"]["a"] == pytest.approx(((s >= 0.5) & neg).sum() / neg.sum())
    assert np.isnan(v["fpr"]["tiny"]) and np.isnan(v["bnsp_auc"]["tiny"])  # one row: too small to gate on
    assert v["subgroup_auc"]["b"] == pytest.approx(roc_auc_score(y[[g == ["b"] for g in groups]],
                                                                 s[[g == ["b"] for g in groups]]))
    with pytest.raises(ValueError, match="without a 0/1 label"):
        suite_metrics(df.assign(y_true=pd.array([pd.NA] * n, dtype="Int8")), kind="labelled_file")


def test_sentiment_templates_load_by_task_with_their_own_variant_names():
    tox = load_templates()
    assert "sentiment" not in {t.set_name for t in tox}  # a toxicity evaluation never sees them
    senti = load_templates(task="sentiment")
    assert {t.set_name for t in senti} == {"sentiment"} and len(senti) >= 10
    assert all(t.variants == ("negative", "positive") for t in senti)
    df = fill_templates(senti[:2], {"female": ["woman"], "muslim": ["muslim"]})
    assert set(df["variant"]) == {"negative", "positive"}
    assert ((df["variant"] == "positive") == (df["y_true"] == 1)).all()
    assert len(df) == 2 * 2 * (3 + 3)  # 2 templates x 2 variants x the forms (female: woman/girl/lady; muslim: 3)
    assert set(t.set_name for t in load_templates(task=None)) >= {"sentiment", "statements"}


def test_template_sets_declare_two_distinct_variants(tmp_path):
    (tmp_path / "s.yaml").write_text("task: t\nvariants: [sad, sad]\ntemplates:\n"
                                     "  - {id: x, sad: 'a {term}'}\n")
    with pytest.raises(ValueError, match="two distinct"):
        load_templates(tmp_path, task="t")
    (tmp_path / "s.yaml").write_text("task: t\nvariants: [sad, glad]\ntemplates:\n"
                                     "  - {id: x, sad: 'a {term}', happy: 'b {term}'}\n")
    with pytest.raises(ValueError, match="needs keys id, sad, glad"):
        load_templates(tmp_path, task="t")
    with pytest.raises(ValueError, match="no template set for task 'toxicity'"):
        load_templates(tmp_path)


def test_labelled_file_reads_class_ids_and_names_of_k_classes(tmp_path):
    p = tmp_path / "k3.csv"
    pd.DataFrame({"t": ["a", "b", "c", "d", "e"], "y": ["Hate", "2", "offensive", "1.0", "neither"],
                  "g": ["female"] * 5}).to_csv(p, index=False)
    cfg = SuiteConfig(name="k3", kind="labelled_file", path=str(p), text_col="t", label_col="y", group_col="g")
    df = load_labelled_file(cfg, class_names=["hate", "offensive", "neither"])
    assert df["y_true"].tolist() == [0, 2, 1, 1, 2]
    with pytest.raises(ValueError, match=r"ids 0..2 or class names"):
        pd.DataFrame({"t": ["a"], "y": ["spam"], "g": ["x"]}).to_csv(p, index=False)
        load_labelled_file(cfg, class_names=["hate", "offensive", "neither"])
    # binary without class names: 0/1, 1.0 and true/false, as before
    pd.DataFrame({"t": ["a", "b", "c"], "y": ["1.0", "false", "TRUE"], "g": ["x"] * 3}).to_csv(p, index=False)
    assert load_labelled_file(cfg)["y_true"].tolist() == [1, 0, 1]
