"""build_suite: suites from config, with the identity tools the config names."""

from __future__ import annotations

import pandas as pd
import pytest

from debias.config import PipelineConfig, SuiteConfig
from debias.evaluation.build import build_suite


def _test_split() -> pd.DataFrame:
    return pd.DataFrame({
        "id": ["a", "b", "c"],
        "text": ["the king said he was tired", "a man and a woman", "nothing to see"],
        "label": [0, 1, 0],
        "groups": [["male"], ["female", "male"], []],
    })


def _cfg(**augment) -> PipelineConfig:
    return PipelineConfig.model_validate({"data": {"path": "-"}, "annotate": {"axes": ["gender"]},
                                          "augment": {"axes": ["gender"], **augment}})


def test_counterfactual_suite_uses_the_configured_swap_dir(tmp_path):
    # A swap list of our own: only king <-> queen. The packaged list also swaps he/she and man/woman.
    (tmp_path / "gender.yaml").write_text("axis: gender\ngroups: [male, female]\nwords:\n  - [king, queen]\n")
    sc = SuiteConfig(name="cf", kind="counterfactual_pairs")
    packaged = build_suite(sc, _cfg(), read_split=lambda name: _test_split())
    custom = build_suite(sc, _cfg(swap_dir=str(tmp_path)), read_split=lambda name: _test_split())

    def swapped(df: pd.DataFrame) -> set[str]:
        return set(df.loc[df["is_augmented"], "text"])

    assert swapped(packaged) == {"the queen said she was tired", "a woman and a man"}
    assert swapped(custom) == {"the queen said he was tired"}


def test_split_suites_read_each_split_once_through_the_cache():
    reads: list[str] = []

    def read(name: str) -> pd.DataFrame:
        reads.append(name)
        return _test_split()

    cache: dict = {}
    for sc in (SuiteConfig(name="t", kind="test_split"), SuiteConfig(name="cf", kind="counterfactual_pairs"),
               SuiteConfig(name="v", kind="val_split")):
        df = build_suite(sc, _cfg(), read_split=read, cache=cache)
        assert len(df) > 0
    assert reads == ["test", "val"]


def test_an_empty_suite_is_an_error_naming_it():
    empty = _test_split().iloc[0:0]
    with pytest.raises(ValueError, match="suite 't'"):
        build_suite(SuiteConfig(name="t", kind="test_split"), _cfg(), read_split=lambda name: empty)


def test_external_suites_are_cleaned_and_masked_like_the_corpus(tmp_path):
    lab = tmp_path / "lab.csv"
    pd.DataFrame({"Text": ["<b>my sister</b> wrote to jane.doe@example.com", "call 555-123-4567 now, woman"],
                  "Label": [0, 1]}).to_csv(lab, index=False)
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"more": ["women mail me at a@b.org"], "less": ["men mail me at a@b.org"],
                  "bias_type": ["gender"]}).to_csv(pairs, index=False)
    cfg = _cfg()
    df = build_suite(SuiteConfig(name="lab", kind="labelled_file", path=str(lab), text_col="Text", label_col="Label"),
                     cfg, read_split=lambda s: _test_split())
    texts = " ".join(df["text"])
    assert "@example.com" not in texts and "555-123-4567" not in texts and "<b>" not in texts
    assert "[EMAIL]" in texts and "[PHONE]" in texts
    assert [list(g) for g in df["groups"]] == [["female"], ["female"]]  # annotated on the cleaned text
    mp = build_suite(SuiteConfig(name="mp", kind="minimal_pairs", path=str(pairs), pair_cols=["more", "less"],
                                 group_col="bias_type"), cfg, read_split=lambda s: _test_split())
    assert not mp["text"].str.contains("a@b.org").any()


def test_template_suite_fills_the_packaged_forms_and_a_forms_file_beside_user_sets(tmp_path):
    packaged = build_suite(SuiteConfig(name="tm", kind="identity_templates", template_sets=["statements"]), _cfg(),
                           read_split=lambda name: _test_split())
    # gender: female and male have three forms each; 8 statements x 2 variants x 6 forms
    assert len(packaged) == 8 * 2 * 6 and set(packaged["axis"]) == {"gender"}
    assert "I am a woman." in set(packaged["text"]) and "Men are stupid and should shut up." in set(packaged["text"])
    (tmp_path / "mine.yaml").write_text("templates:\n  - {id: x, neutral: 'Hi {person}.', toxic: 'Go away {people}.'}\n")
    (tmp_path / "forms.yaml").write_text("gender:\n  female: [[lady, ladies]]\n")
    mine = build_suite(SuiteConfig(name="tm", kind="identity_templates", template_dir=str(tmp_path)), _cfg(),
                       read_split=lambda name: _test_split())
    assert sorted(mine["text"]) == sorted(["Hi a lady.", "Go away ladies.",  # female: the user's one form
                                           "Hi a man.", "Go away men.", "Hi a boy.", "Go away boys.",
                                           "Hi a gentleman.", "Go away gentlemen."])  # male: packaged
