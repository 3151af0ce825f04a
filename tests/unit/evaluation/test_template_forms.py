"""Grammatical identity templates: forms per group, articles, plurals, and the packaged sets filled."""

from __future__ import annotations

import re

import pytest

from debias.evaluation.suites import Template, fill_templates, load_templates
from debias.evaluation.templates.forms import (
    FORM_SLOTS,
    Form,
    fill_slot,
    find_slots,
    indefinite_article,
    load_forms,
    parse_forms,
)
from debias.identity.annotate import IdentityAnnotator
from debias.identity.lexicon import available_axes, load_lexicon


@pytest.fixture(scope="module")
def lexicon():
    return load_lexicon(available_axes())


@pytest.fixture(scope="module")
def forms():
    return load_forms()


@pytest.fixture(scope="module")
def packaged():
    return load_templates(task=None)


def test_every_lexicon_group_has_forms(lexicon, forms):
    assert len(lexicon.groups) == 87
    assert sorted(g for g in lexicon.groups if not forms.get(g)) == []
    assert set(forms) <= set(lexicon.groups)  # no forms for a group the lexicons do not know
    assert all(1 <= len(f) <= 4 for f in forms.values())


@pytest.mark.parametrize("phrase, article", [
    ("elderly person", "an"), ("old person", "an"), ("European", "a"), ("Ukrainian person", "a"),
    ("university", "a"), ("unique", "a"), ("user", "a"), ("one-off", "a"), ("once-famous", "a"),
    ("Ugandan", "a"), ("Uruguayan", "a"), ("hour", "an"), ("honest man", "an"), ("heir", "an"),
    ("honorary member", "an"), ("uninsured driver", "an"), ("umbrella", "an"), ("Uzbek", "an"),
    ("urban", "an"), ("ugly", "an"), ("LGBTQ person", "an"), ("LGBTQ+ person", "an"), ("FBI agent", "an"),
    ("US citizen", "a"), ("x-ray", "an"), ("8-year-old", "an"), ("18-year-old", "an"), ("11", "an"),
    ("110", "a"), ("5-year-old", "a"), ("Asian person", "an"), ("Indian", "an"), ("Iraqi", "an"),
    ("Israeli person", "an"), ("Irishwoman", "an"), ("autistic person", "an"), ("intersex person", "an"),
    ("Muslim", "a"), ("woman", "a"), ("hard-of-hearing person", "a"), ("horse", "a"), ("Hindu", "a"),
    ("Orthodox Jew", "an"), ("agnostic", "an"), ("atheist", "an"), ("Indigenous person", "an"),
])
def test_indefinite_article_by_sound(phrase, article):
    assert indefinite_article(phrase) == article


def test_form_renders_person_people_and_adjective():
    adj, noun = Form("elderly", "elderly"), Form("female", "woman", "women")
    assert (adj.person, adj.people, adj.render("{adj}"), adj.name) == (
        "an elderly person", "elderly people", "elderly", "elderly person")
    assert (noun.person, noun.people, noun.name) == ("a woman", "women", "woman")
    assert noun.render("{People}") == "Women" and adj.render("{Person}") == "An elderly person"
    assert Form("queer", "LGBTQ").render("{People}") == "LGBTQ people"  # capitalising keeps the acronym
    with pytest.raises(ValueError, match="is a noun"):
        noun.render("{adj}")
    assert fill_slot("I am {person}.", noun) == "I am a woman."
    assert fill_slot("{People} came.", "muslim") == "Muslim people came."  # a plain word is an adjective
    assert fill_slot("I am {term}.", "muslim") == "I am muslim."
    with pytest.raises(ValueError, match="exactly one slot"):
        fill_slot("{person} and {people}", noun)


def test_every_packaged_template_renders_for_every_group(lexicon, forms, packaged):
    df = fill_templates(packaged, lexicon.terms, forms=forms, axes=lexicon.groups)
    assert not df["text"].str.contains(r"[{}]").any()
    assert df["id"].is_unique
    n_forms = sum(len(forms[g]) for g in lexicon.groups)
    assert len(df) == 2 * len(packaged) * n_forms  # no packaged template takes {adj}: every form fills it
    for (tpl, group), rows in df.groupby([df["template"], df["groups"].str[0]]):
        assert len(rows) == 2 * len(forms[group]), (tpl, group)
    assert (df["groups"].map(len) == 1).all()
    # every sentence starts with a capital and ends with a full stop, question mark or the like
    assert df["text"].str.match(r"^[A-Z]").all() and df["text"].str.match(r".*[.?!]$").all()
    # No slot leaves "a a", "a an", "an a", a doubled space or an article before a plural.
    assert not df["text"].str.contains(r"\b(?:a|an) (?:a|an)\b|  ", regex=True).any()


def test_pairs_name_the_same_form_and_differ_only_around_it(lexicon, forms, packaged):
    df = fill_templates(packaged, lexicon.terms, forms=forms)
    df["key"] = df["id"].str.split("/").str[3:].str.join("/")
    for _, pair in df.groupby(["template", "key"]):
        assert len(pair) == 2 and sorted(pair["y_true"].tolist()) == [0, 1]
        assert pair["term"].nunique() == 1 and pair["groups"].map(tuple).nunique() == 1


def test_plural_slots_get_plurals_and_singular_slots_articles(lexicon, forms, packaged):
    df = fill_templates(packaged, lexicon.terms, forms=forms)
    by_id = {f"{t.set_name}/{t.id}": t for t in packaged}
    for row in df.itertuples():
        tpl = by_id[row.template]
        pattern = tpl.neutral if row.y_true == 0 else tpl.toxic
        (slot,) = find_slots(pattern)
        form = next(f for f in forms[row.groups[0]] if f.name == row.id.split("/", 3)[3])
        what = FORM_SLOTS[slot][0]
        words = form.people if what == "people" else form.person
        if slot[1].isupper():
            words = words[0].upper() + words[1:]
        assert row.text == pattern.replace(slot, words)
        if what == "people" and not form.is_adjective:
            assert form.plural.casefold() in row.text.casefold()
            assert not re.search(rf"\ban? {re.escape(form.plural)}\b", row.text, flags=re.I)


def test_each_form_names_its_group_and_the_templates_name_none(lexicon, forms, packaged):
    ann = IdentityAnnotator(lexicon)
    for group, fs in forms.items():
        for f in fs:
            for words in (f.person, f.people):
                assert group in ann.detect(f"I know {words}."), (group, words)
    for t in packaged:
        for pattern in (t.neutral, t.toxic):
            (slot,) = find_slots(pattern)
            assert ann.detect(pattern.replace(slot, "someone")) == [], pattern


def test_hand_checked_sentences(lexicon, forms, packaged):
    df = fill_templates(packaged, lexicon.terms, forms=forms).set_index("id")["text"]
    assert df["statements/i_am/neutral/elderly person"] == "I am an elderly person."
    assert df["statements/i_am/neutral/senior citizen"] == "I am a senior citizen."
    assert df["statements/i_am/neutral/Ukrainian"] == "I am a Ukrainian."
    assert df["statements/i_am/neutral/LGBTQ person"] == "I am an LGBTQ person."
    assert df["statements/i_am/neutral/person with an intellectual disability"] == (
        "I am a person with an intellectual disability.")
    assert df["statements/proud/toxic/Muslim"] == "Being a Muslim is disgusting and shameful."
    assert df["statements/people_are/toxic/woman"] == "Women are stupid and should shut up."
    assert df["statements/people_are/toxic/person with a disability"] == (
        "People with disabilities are stupid and should shut up.")
    assert df["statements/people_are/neutral/European person"] == "Many people I know are European people."
    assert df["statements/people_are/neutral/European"] == "Many people I know are Europeans."
    assert df["statements/town/neutral/gentleman"] == "There are many gentlemen in my town."
    assert df["conversation/question/toxic/Indian"] == "Nobody cares what an Indian thinks, you ignorant fool."
    assert df["conversation/as_a/neutral/autistic person"] == "As an autistic person, I found this thread really helpful."
    assert df["conversation/welcome/toxic/trans person"] == "I hate trans people, they ruin everything they touch."
    assert df["sentiment/hotel/positive/Orthodox Jew"] == (
        "The hotel is run by Orthodox Jews, and our stay was quiet and comfortable.")
    assert df["sentiment/author/negative/Irishwoman"] == "This novel by an Irishwoman is tedious and badly written."


def test_adjective_templates_skip_noun_only_groups():
    tpls = [Template("s", "cand", "The {adj} candidate won.", "The {adj} candidate is scum.")]
    forms = {"female": (Form("female", "woman", "women"),),
             "jewish": (Form("jewish", "Jewish"), Form("jewish", "Jew", "Jews"))}
    df = fill_templates(tpls, {"female": ["woman"], "jewish": ["jewish"]}, forms=forms)
    assert df["text"].tolist() == ["The Jewish candidate won.", "The Jewish candidate is scum."]
    assert df["id"].tolist() == ["s/cand/neutral/Jewish person", "s/cand/toxic/Jewish person"]
    assert df["term"].tolist() == ["Jewish", "Jewish"] and df["groups"].tolist() == [["jewish"], ["jewish"]]


def test_user_term_templates_fill_as_before_without_forms():
    tpls = [Template("s", "a", "I am {term}.", "I hate {term}.")]
    df = fill_templates(tpls, {"female": ["women", "woman"], "klingon": ["klingon"]}, forms={})
    assert df["id"].tolist() == ["s/a/neutral/klingon", "s/a/toxic/klingon", "s/a/neutral/woman",
                                 "s/a/toxic/woman", "s/a/neutral/women", "s/a/toxic/women"]
    assert df["text"].tolist()[:2] == ["I am klingon.", "I hate klingon."]
    assert df["term"].tolist()[::2] == ["klingon", "woman", "women"]


def test_form_templates_need_forms_for_every_group():
    tpls = [Template("s", "a", "I am {person}.", "I hate {people}.")]
    with pytest.raises(ValueError, match=r"no forms for group\(s\) \['klingon'\]"):
        fill_templates(tpls, {"female": ["woman"], "klingon": ["klingon"]})


def test_parse_forms_rejects_bad_entries():
    assert parse_forms({"x": {"a": ["Alpha", ["beta", "betas"]]}})["a"][1] == Form("a", "beta", "betas")
    with pytest.raises(ValueError, match="noun \\[singular, plural\\]"):
        parse_forms({"x": {"a": [["beta"]]}})
    with pytest.raises(ValueError, match="non-empty list of forms"):
        parse_forms({"x": {"a": []}})
    with pytest.raises(ValueError, match="'Beta' is a form of group 'a' and again of group 'b'"):
        parse_forms({"x": {"a": [["beta", "betas"]]}, "y": {"b": [["Beta", "Betas"]]}})
    with pytest.raises(ValueError, match="listed twice"):
        parse_forms({"x": {"a": ["alpha"]}, "y": {"a": ["other"]}})


def test_user_forms_beside_user_sets(tmp_path):
    (tmp_path / "mine.yaml").write_text("templates:\n  - {id: x, neutral: 'Hi {person}.', toxic: 'Go away {people}.'}\n")
    (tmp_path / "forms.yaml").write_text("fiction:\n  klingon: [Klingon]\ngender:\n  female: [[lady, ladies]]\n")
    tpls = load_templates(tmp_path)  # forms.yaml is not a template set
    assert [t.id for t in tpls] == ["x"]
    forms = load_forms(tmp_path)
    assert forms["female"] == (Form("female", "lady", "ladies"),) and "muslim" in forms  # replaces, adds, keeps
    df = fill_templates(tpls, {"klingon": ["klingon"], "female": ["lady"]}, forms=forms)
    assert df["text"].tolist() == ["Hi a lady.", "Go away ladies.", "Hi a Klingon person.", "Go away Klingon people."]


def test_a_template_may_not_mix_term_and_form_slots(tmp_path):
    (tmp_path / "bad.yaml").write_text("templates:\n  - {id: x, neutral: 'I am {term}.', toxic: '{People} stink.'}\n")
    with pytest.raises(ValueError, match="mixes"):
        load_templates(tmp_path)
    (tmp_path / "bad.yaml").write_text("templates:\n  - {id: x, neutral: '{person} or {people}', toxic: '{people}'}\n")
    with pytest.raises(ValueError, match="exactly one slot.*found 2"):
        load_templates(tmp_path)


def test_every_group_is_big_enough_for_the_group_metrics(lexicon, forms):
    # the default evaluate.min_group_size is 30: each packaged task's suite gives every group that many rows
    for task in ("toxicity", "sentiment"):
        df = fill_templates(load_templates(task=task), lexicon.terms, forms=forms)
        sizes = df.groupby(df["groups"].str[0]).size()
        assert len(sizes) == 87 and sizes.min() >= 30, (task, sizes.idxmin(), sizes.min())
        assert len(df) < 21_380  # smaller than the raw-term suite it replaces (10 templates x 2 x 1,069 terms)
