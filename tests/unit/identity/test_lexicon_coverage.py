"""Coverage of the project's own lexicons and swap lists against public reference word lists.

The reference lists (../shared/data/word-lists, ../shared/data/bias-madlibs) are read only
here, to measure; none of their content is part of the project. Each test prints its figure
and asserts a floor below what the lists reach today, so a regression in the lexicons fails.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from debias.identity.annotate import IdentityAnnotator
from debias.identity.lexicon import AXES, load_lexicon
from debias.identity.swaps import load_swaps, swap_text

DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
WL = DATA / "word-lists"
pytestmark = pytest.mark.skipif(not WL.is_dir(), reason=f"reference word lists not found at {WL}")

# HolisticBias axis -> our axes that may detect its descriptors.
HB_AXES = {
    "ability": {"disability"}, "age": {"age"}, "gender_and_sex": {"gender", "gender_identity", "sexual_orientation"},
    "nationality": {"nationality", "race_ethnicity"}, "race_ethnicity": {"race_ethnicity"},
    "religion": {"religion"}, "sexual_orientation": {"sexual_orientation"},
}


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon(list(AXES))


@pytest.fixture(scope="module")
def ann(lexicon):
    return IdentityAnnotator(lexicon)


@pytest.fixture(scope="module")
def gender_table():
    return load_swaps(["gender"])


def _share(hits: list[bool]) -> float:
    assert hits, "empty reference list"
    return sum(hits) / len(hits)


def _report(name: str, share: float, n: int) -> None:
    print(f"\ncoverage {name}: {share:.3f} of {n}")


def test_gendered_words_detected_or_swappable(ann, lexicon, gender_table):
    words = set()
    for f in ("male_word_file.txt", "female_word_file.txt"):
        words |= {w.strip().lower() for w in (WL / "gn_glove" / f).read_text().splitlines() if w.strip()}
    words |= {w.lower() for w in json.loads((WL / "debiaswe" / "gender_specific_seed.json").read_text())}
    words = sorted(w.replace("_", " ") for w in words)
    gender_groups = set(lexicon.groups_of("gender"))
    hits = [bool(set(ann.detect(w)) & gender_groups) or swap_text(w, gender_table) != w for w in words]
    share = _share(hits)
    _report("gendered words (gn_glove + debiaswe seed)", share, len(words))
    assert share >= 0.65


def test_gendered_pairs_swapped_exactly(gender_table):
    pairs = json.loads((WL / "cds" / "cda_default_pairs.json").read_text())
    pairs += json.loads((WL / "debiaswe" / "definitional_pairs.json").read_text())
    pairs += json.loads((WL / "bias-bench" / "bias_attribute_words.json").read_text())["gender"]
    # Compared as written (names are only swapped when capitalised); "her" alone reads as "him".
    pairs = sorted({(a.replace("_", " "), b.replace("_", " ")) for a, b in pairs})
    hits = [swap_text(a, gender_table).lower() == b.lower() or swap_text(b, gender_table).lower() == a.lower()
            for a, b in pairs]
    share = _share(hits)
    _report("gendered pairs (CDA + debiaswe + bias-bench) swapped to their partner", share, len(pairs))
    assert share >= 0.7


def test_first_name_pairs(gender_table):
    pairs = json.loads((WL / "cds" / "names_pairs_1000_scaled.json").read_text())
    ours = gender_table.names
    top = pairs[:100]
    share_top = _share([a.lower() in ours or b.lower() in ours for a, b in top])
    share_all = _share([a.lower() in ours or b.lower() in ours for a, b in pairs])
    _report("first-name pairs, 100 most frequent, either name swappable", share_top, len(top))
    _report("first-name pairs, all, either name swappable", share_all, len(pairs))
    assert share_top >= 0.9 and share_all >= 0.1


def test_dixon_identity_terms_detected(ann):
    path = DATA / "bias-madlibs" / "bias_madlibs_data" / "adjectives_people.txt"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    terms = sorted({t.strip().lower() for t in path.read_text().splitlines() if t.strip()})
    hits = [bool(ann.detect(t)) for t in terms]
    share = _share(hits)
    _report("Dixon et al. identity adjectives detected", share, len(terms))
    assert share >= 0.8


def test_holisticbias_descriptors_detected_on_the_right_axis(ann, lexicon):
    doc = json.loads((WL / "holisticbias" / "descriptors.json").read_text())
    total_hits: list[bool] = []
    for hb_axis, ours in HB_AXES.items():
        node = doc[hb_axis]
        items = [x for v in (node.values() if isinstance(node, dict) else [node]) for x in v]
        descs = sorted({(x["descriptor"] if isinstance(x, dict) else x).lower() for x in items})
        hits = [any(lexicon.groups[g] in ours for g in ann.detect(f"{d} people")) for d in descs]
        total_hits += hits
        _report(f"HolisticBias {hb_axis} descriptors", _share(hits), len(hits))
    share = _share(total_hits)
    _report("HolisticBias descriptors, 7 axes pooled", share, len(total_hits))
    assert share >= 0.6


def test_bias_bench_religion_race_terms_detected(ann, lexicon):
    doc = json.loads((WL / "bias-bench" / "bias_attribute_words.json").read_text())
    # The race list is mostly continent names ("africa", "asia"); our lexicons list demonyms and
    # people terms, not places, by design, hence the lower race floor.
    for axis, ours, floor in (("religion", "religion", 0.9), ("race", "race_ethnicity", 0.3)):
        words = sorted({w.lower() for row in doc[axis] for w in row})
        share = _share([any(lexicon.groups[g] == ours for g in ann.detect(w)) for w in words])
        _report(f"bias-bench {axis} terms", share, len(words))
        assert share >= floor
