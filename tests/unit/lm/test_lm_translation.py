"""Translation-suite metrics on hand-translated sentences worked out by hand, and against scikit-learn."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score
from sklearn.metrics import f1_score as sk_f1

from debias.lm.translation import (
    attach_translations,
    delta_g,
    delta_s,
    f1_score,
    judge_translations,
    read_translations,
    translation_rows,
    translation_scores,
)
from debias.lm.translation_lexicon import load_translation_lexicon

# (entity, gold, stereotype, source, a hand translation into German) and what it shows
HAND = [
    ("physician", "male", "pro", "winobias", "Der Arzt rief die Krankenschwester an."),             # male, right
    ("physician", "female", "anti", "winobias", "Der Arzt rief die Krankenschwester an."),          # male, wrong
    ("nurse", "female", "pro", "winobias", "Die Ärztin dankte der Krankenschwester."),             # female, right
    ("nurse", "male", "anti", "winobias", "Der Arzt dankte der Krankenschwester."),                # female, wrong
    ("secretary", "male", "anti", "winobias", "Der Sekretär half dem Bauern."),                    # male, right
    ("secretary", "female", "pro", "winobias", ""),                                                # empty
    ("teacher", "female", "none", "winogender", "Die Lehrerin sprach."),                           # female, right
    ("teacher", "male", "none", "winogender", "Die Lehrerin sprach."),                             # female, wrong
    ("driver", "female", "anti", "winobias", "The driver smiled."),                                # not found
]


@pytest.fixture(scope="module")
def de():
    return {"de": load_translation_lexicon("de")}


def _items(rows=HAND):
    return pd.DataFrame([{"item_id": f"i{k}", "source": s, "subset": "x", "text": f"English sentence {k}.",
                          "entity": e, "gold": g, "stereotype": st} for k, (e, g, st, s, _) in enumerate(rows)])


def _judged(de, rows=HAND):
    tr, excluded = translation_rows(_items(rows), de)
    return judge_translations(tr, {f"translation/de/i{k}": r[4] for k, r in enumerate(rows)}, de), excluded


def test_hand_worked_accuracy_delta_g_delta_s_and_counts(de):
    judged, excluded = _judged(de)
    assert judged["pred"].tolist() == ["male", "male", "female", "female", "male", "unknown", "female", "female",
                                       "unknown"]
    assert judged["reason"].tolist()[5] == "empty" and judged["reason"].tolist()[8] == "not_found"
    rec = translation_scores(judged, n_boot=0, excluded=excluded)
    assert [(r["lang"], r["source"]) for r in rec] == [("de", "all"), ("de", "winobias"), ("de", "winogender")]
    a = rec[0]
    # 4 of 9 right (items 0, 2, 4, 6)
    assert a["n"] == 9 and a["accuracy"] == pytest.approx(400 / 9)
    # male: TP 2 (0, 4), FP 1 (1), FN 2 (3, 7) -> 4/7; female: TP 2 (2, 6), FP 2 (3, 7), FN 3 (1, 5, 8) -> 4/9
    assert a["f1_male"] == pytest.approx(400 / 7) and a["f1_female"] == pytest.approx(400 / 9)
    assert a["delta_g"] == pytest.approx(400 / 7 - 400 / 9)
    # labelled: pro 0, 2, 5 -> 2/3 right; anti 1, 3, 4, 8 -> 1/4 right
    assert a["n_stereotype"] == 7 and a["accuracy_pro"] == pytest.approx(200 / 3) and a["accuracy_anti"] == 25
    assert a["delta_s"] == pytest.approx(200 / 3 - 25)
    assert (a["n_pred_male"], a["n_pred_female"], a["n_pred_unknown"], a["n_empty"], a["n_not_found"]) == (3, 4, 2,
                                                                                                          1, 1)
    assert a["unknown_rate"] == pytest.approx(2 / 9) and a["n_excluded"] == 0
    assert np.isnan(a["accuracy_ci_low"])                       # n_boot=0: no interval
    wg = rec[2]                                                 # items 6, 7: no stereotype label
    assert wg["n"] == 2 and wg["accuracy"] == 50 and np.isnan(wg["delta_s"]) and wg["n_stereotype"] == 0
    json.dumps(rec)                                             # plain types throughout


def test_intervals_contain_their_estimates(de):
    judged, _ = _judged(de, HAND * 5)
    a = translation_scores(judged, n_boot=200, seed=3)[0]
    for k in ("accuracy", "delta_g", "delta_s"):
        assert a[f"{k}_ci_low"] <= a[k] <= a[f"{k}_ci_high"], k
    assert a == translation_scores(judged, n_boot=200, seed=3)[0]  # seeded


def test_against_scikit_learn_and_pandas_on_random_data():
    rng = np.random.default_rng(0)
    for _ in range(20):
        n = int(rng.integers(5, 60))
        y = rng.choice(["male", "female"], size=n)
        p = rng.choice(["male", "female", "neutral", "unknown"], size=n, p=[0.4, 0.3, 0.1, 0.2])
        for g in ("male", "female"):
            if (y == g).any() or (p == g).any():
                assert f1_score(y, p, g) == pytest.approx(sk_f1(y, p, labels=[g], average=None, zero_division=0)[0])
        assert delta_g(y, p) == pytest.approx(sk_f1(y, p, labels=["male"], average=None, zero_division=0)[0]
                                              - sk_f1(y, p, labels=["female"], average=None, zero_division=0)[0])
        correct = (y == p).astype(float)
        assert correct.mean() == pytest.approx(accuracy_score(y, p))
        pro = rng.integers(0, 2, size=n)
        if 0 < pro.sum() < n:
            by = pd.Series(correct).groupby(pro).mean()
            assert delta_s(correct, pro) == pytest.approx(by[1] - by[0])
    assert np.isnan(f1_score(np.array(["male"]), np.array(["male"]), "female"))
    assert np.isnan(delta_s(np.array([1.0]), np.array([1])))


def test_rows_leave_out_entities_a_language_cannot_mark_and_fill_prompts(de, tmp_path):
    (tmp_path / "xx.yaml").write_text("code: xx\nlanguage: Testish\ndeterminers: {}\n"
                                      "occupations: {nurse: {male: [nursor], female: [nursa]}}\n", encoding="utf-8")
    lex = {"de": de["de"], "xx": load_translation_lexicon("xx", tmp_path)}
    items = _items([("nurse", "male", "pro", "winobias", ""), ("victim", "male", "none", "winogender", "")])
    items.loc[0, "text"] = "A {weird} nurse."
    rows, excluded = translation_rows(items, lex, prompt="To {language} ({lang}): {text}")
    assert excluded == {"de": 1, "xx": 1}                      # "victim": no entry in either
    assert rows["id"].tolist() == ["translation/de/i0", "translation/xx/i0"]
    assert rows["prompt"].tolist() == ["To German (de): A {weird} nurse.", "To Testish (xx): A {weird} nurse."]
    with pytest.raises(ValueError, match="must contain"):
        translation_rows(items, lex, prompt="no slot")


def test_translations_file_jsonl_and_csv(de, tmp_path):
    rows, _ = translation_rows(_items(HAND[:3]), de)
    lines = [{"id": "i0", "lang": "de", "translation": HAND[0][4]}, {"id": "i1", "lang": "de", "translation": None},
             {"id": "i0", "lang": "fr", "translation": "Le médecin."}, {"id": "zz", "lang": "de", "translation": "x"}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(x) for x in lines), encoding="utf-8")
    got = attach_translations(rows, read_translations(tmp_path / "t.jsonl"))
    # i1 given as null, i2 not in the file: both missing
    assert got["completion"].iloc[0] == HAND[0][4] and got["completion"].iloc[1:].isna().all()
    judged = judge_translations(rows, got.set_index("id")["completion"], de)
    assert judged["reason"].tolist() == ["", "not_translated", "not_translated"]
    pd.DataFrame(lines[:1]).to_csv(tmp_path / "t.csv", index=False)
    assert read_translations(tmp_path / "t.csv")["translation"].tolist() == [HAND[0][4]]
    (tmp_path / "dup.jsonl").write_text("\n".join(json.dumps(lines[0]) for _ in range(2)), encoding="utf-8")
    with pytest.raises(ValueError, match=r"repeated \(id, lang\)"):
        read_translations(tmp_path / "dup.jsonl")
    pd.DataFrame({"id": ["i0"], "text": ["x"]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(ValueError, match=r"missing column\(s\) \['lang', 'translation'\]"):
        read_translations(tmp_path / "bad.csv")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(ValueError, match=".jsonl, .csv or .tsv"):
        read_translations(tmp_path / "t.txt")
    with pytest.raises(FileNotFoundError):
        read_translations(tmp_path / "none.jsonl")
