"""Lexicon loading: packaged files, plural rule, and error messages for bad files."""

from __future__ import annotations

import pytest

from debias.identity.lexicon import AXES, available_axes, compile_terms, load_lexicon, pluralize


def test_packaged_lexicons_cover_every_axis_with_unique_groups():
    assert available_axes() == sorted(AXES)
    lex = load_lexicon(list(AXES))
    assert lex.axes == sorted(AXES)
    assert lex.group_names == sorted(lex.groups)
    for g in ["female", "male", "black", "white", "asian", "latino", "native_american", "arab",
              "christian", "muslim", "jewish", "hindu", "buddhist", "sikh", "atheist", "gay",
              "lesbian", "bisexual", "heterosexual", "queer", "transgender", "nonbinary",
              "cisgender", "blind", "deaf", "disabled", "autistic", "mentally_ill", "elderly",
              "teenager", "young", "american", "mexican", "chinese", "indian"]:
        assert g in lex.groups, g
    assert lex.groups["female"] == "gender" and lex.groups["transgender"] == "gender_identity"
    for axis in AXES:
        assert len(lex.groups_of(axis)) >= 2


def test_terms_include_generated_plurals_and_multiword():
    lex = load_lexicon(["gender", "race_ethnicity", "disability"])
    assert {"woman", "women", "girls", "ladies", "mothers in law"} <= set(lex.terms["female"])
    assert {"african american", "african americans"} <= set(lex.terms["black"])
    assert "blinds" not in lex.terms["blind"] and "in a wheelchair" in lex.terms["disabled"]


@pytest.mark.parametrize("term, plural", [
    ("woman", "women"), ("chairman", "chairmen"), ("german", "germans"), ("lady", "ladies"),
    ("gay", "gays"), ("church", "churches"), ("wife", "wives"), ("black person", "black people"),
    ("japanese", "japanese"), ("jew", "jews"), ("deaf", "deaf"),
])
def test_pluralize(term, plural):
    assert pluralize(term) == plural


def test_unknown_axis_lists_available():
    with pytest.raises(ValueError, match="unknown axis \\['politics'\\]; available axes: age, disability"):
        load_lexicon(["gender", "politics"])


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    (tmp_path / "gender.yaml").write_text("axis: gender\ngroups:\n  female: [woman, girl\n  male: [man]\n")
    with pytest.raises(ValueError, match=r"gender\.yaml: line \d+, column \d+ is not valid YAML.*expected a mapping"):
        load_lexicon(["gender"], lexicon_dir=tmp_path)


@pytest.mark.parametrize("body, msg", [
    ("- just\n- a list\n", "found a list"),
    ("axis: gender\ngroups: [woman]\n", "'groups' is list"),
    ("axis: religion\ngroups: {female: [woman]}\n", "expected 'axis: gender'"),
    ("axis: gender\ngroups: {Female: [woman]}\n", "lower-case identifier"),
    ("axis: gender\ngroups: {female: []}\n", "non-empty list"),
    ("axis: gender\ngroups: {female: [woman, 3]}\n", "expected a term"),
    ("axis: gender\ngroups: {female: [woman]}\nsynonyms: {}\n", "unknown keys"),
    ("axis: gender\ngroups: {female: [person], male: [person]}\n", "in both groups"),
])
def test_wrong_structure_messages(tmp_path, body, msg):
    (tmp_path / "gender.yaml").write_text(body)
    with pytest.raises(ValueError, match=msg) as e:
        load_lexicon(["gender"], lexicon_dir=tmp_path)
    assert "gender.yaml" in str(e.value)


def test_group_names_unique_across_axes(tmp_path):
    (tmp_path / "a.yaml").write_text("axis: a\ngroups: {x: [foo]}\n")
    (tmp_path / "b.yaml").write_text("axis: b\ngroups: {x: [bar]}\n")
    with pytest.raises(ValueError, match="already defined by axis 'a'"):
        load_lexicon(["a", "b"], lexicon_dir=tmp_path)


def test_compile_terms_longest_first_and_boundaries():
    p = compile_terms(["white", "white house", "man", "ma'am"])
    assert p.findall("the white-house, a white man, manage, ma\u2019am, whiteness") == [
        "white-house", "white", "man", "ma\u2019am"]
