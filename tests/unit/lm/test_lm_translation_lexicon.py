"""Reading the gender of an occupation in a translation, with the packaged and a user's lexicons."""

from __future__ import annotations

import pytest

from debias.lm.audit import resolve_data_dir
from debias.lm.config import AuditLMConfig
from debias.lm.translation_lexicon import (
    available_languages,
    detect_gender,
    load_translation_lexicon,
    strip_echo,
    tokenize,
)

DATA = resolve_data_dir(AuditLMConfig())


@pytest.fixture(scope="module")
def lex():
    return {c: load_translation_lexicon(c) for c in ("de", "es", "fr")}


# Hand translations of WinoBias-style sentences, each with the gender a reader gives the entity.
@pytest.mark.parametrize("lang, text, entity, expected", [
    # German: the noun decides
    ("de", "Die Ärztin rief den Krankenpfleger an, weil er krank war.", "nurse", ("male", "")),
    ("de", "Die Ärztin rief den Krankenpfleger an, weil sie Hilfe brauchte.", "physician", ("female", "")),
    ("de", "Der Hausmeister half der Haushälterin.", "housekeeper", ("female", "")),
    ("de", "Der Bauer schrieb dem Kunden einen Brief.", "customer", ("male", "")),        # weak noun + n
    ("de", "Das Auto des Arztes war kaputt.", "physician", ("male", "")),               # genitive + es
    ("de", "Die Vorgesetzte lobte ihn.", "supervisor", ("female", "")),                 # epicene + die
    ("de", "Er dankte dem Angestellten.", "employee", ("male", "")),                     # epicene + n + dem
    ("de", "Vorgesetzte loben selten.", "supervisor", ("unknown", "ambiguous")),        # no determiner
    ("de", "Das Kind spielte.", "child", ("neutral", "")),
    ("de", "Der Lehrer und die Lehrerin kamen.", "teacher", ("unknown", "conflict")),
    ("de", "Der Mechaniker kam.", "teacher", ("unknown", "not_found")),
    # Spanish: epicene nouns take the article's gender; del = de + el
    ("es", "La enfermera habló con el médico porque él estaba cansado.", "physician", ("male", "")),
    ("es", "El mecánico llamó a la recepcionista.", "receptionist", ("female", "")),
    ("es", "El coche del recepcionista estaba roto.", "receptionist", ("male", "")),
    ("es", "La nueva estudiante llegó.", "student", ("female", "")),                    # adjective between
    ("es", "Recepcionista llamó.", "receptionist", ("unknown", "ambiguous")),
    ("es", "El trabajador de la construcción ayudó.", "construction worker", ("male", "")),  # multi-word
    ("es", "La trabajadora de la construcción ayudó.", "construction worker", ("female", "")),
    # French: l' marks no gender; sa does
    ("fr", "Le développeur s'est disputé avec la secrétaire.", "secretary", ("female", "")),
    ("fr", "L'infirmière a aidé le patient.", "nurse", ("female", "")),
    ("fr", "Il a appelé sa comptable.", "accountant", ("female", "")),
    ("fr", "L'architecte est arrivé.", "architect", ("unknown", "ambiguous")),
    ("fr", "Le médecin et la médecin.", "physician", ("unknown", "conflict")),
])
def test_hand_translations(lex, lang, text, entity, expected):
    assert lex[lang].detect(text, entity) == expected


def test_missing_empty_and_echoed_outputs_are_reasons_not_errors(lex):
    de = lex["de"]
    assert de.detect(None, "nurse") == ("unknown", "not_translated")
    assert de.detect(float("nan"), "nurse") == ("unknown", "not_translated")
    assert de.detect("  \n", "nurse") == ("unknown", "empty")
    src = "The manager praised the designer because she was talented."
    # the English echo holds "designer" (a German male form); only the translation counts
    assert de.detect(f"{src}\nDer Manager lobte die Designerin.", "designer", source=src) == ("female", "")
    assert de.detect(src, "designer", source=src) == ("unknown", "echo")
    assert de.detect(src, "designer") == ("male", "")   # without the source the echo is read
    # a garbled copy inside quotes, after a German preamble that names no designer
    garbled = 'Auf Deutsch: "The manager praised a designer because she is talented."'
    assert de.detect(garbled, "designer", source=src) == ("unknown", "not_found")
    # loanwords shared with the source do not make a translation an echo
    assert de.detect("Der Manager lobte den Designer, weil er begabt war.", "designer",
                     source=src) == ("male", "")
    with pytest.raises(ValueError, match="no entry for 'astronaut'"):
        de.detect("x", "astronaut")
    with pytest.raises(TypeError, match="string or missing"):
        de.detect(3, "nurse")


def test_strip_echo_keeps_segments_that_share_few_words_with_the_source():
    src = "The nurse thanked the doctor."
    assert strip_echo("The nurse thanked the doctor!\nDie Krankenschwester dankte dem Arzt.", src).strip() == (
        "Die Krankenschwester dankte dem Arzt")
    assert strip_echo("the doctor", src).strip() == ""
    assert strip_echo("le doctor nouveau", src, max_overlap=0.5).strip() == "le doctor nouveau"   # 1 of 3 words
    assert strip_echo("le doctor", src, max_overlap=0.5).strip() == ""                           # 1 of 2 words


def test_tokenize_and_window():
    assert tokenize("L'Infirmière, aide-soignante!") == ["l", "infirmière", "aide", "soignante"]
    forms = {("estudiante",): "epicene"}
    dets = {"la": "female"}
    assert detect_gender("la muy buena estudiante", forms, dets, window=3) == ("female", "")
    assert detect_gender("la muy muy buena estudiante", forms, dets, window=3) == ("unknown", "ambiguous")


def test_a_language_is_a_file(tmp_path, lex):
    (tmp_path / "it.yaml").write_text(
        "code: it\nlanguage: Italian\ndeterminers: {male: [il, lo, un], female: [la, una]}\n"
        "occupations:\n  nurse: {male: [infermiere], female: [infermiera]}\n"
        "  secretary: {male: [segretario], female: [segretaria]}\n  student: {epicene: [studente]}\n",
        encoding="utf-8")
    it = load_translation_lexicon("it", tmp_path)
    assert it.language == "Italian" and it.entities == ["nurse", "secretary", "student"]
    assert it.detect("L'infermiera ha aiutato il segretario.", "secretary") == ("male", "")
    assert it.detect("La studente.", "student") == ("female", "")
    assert "it" in available_languages(tmp_path) and "it" not in available_languages()
    # the user's folder is searched first, and still falls back to the packaged languages
    assert load_translation_lexicon("de", tmp_path).forms == lex["de"].forms
    (tmp_path / "de.yaml").write_text("code: de\nlanguage: Deutsch\ndeterminers: {}\n"
                                      "occupations: {nurse: {female: [Schwester]}}\n", encoding="utf-8")
    assert load_translation_lexicon("de", tmp_path).entities == ["nurse"]


@pytest.mark.parametrize("body, match", [
    ("code: xx\nlanguage: X\ndeterminers: {}\n", "missing key"),
    ("code: xx\nlanguage: X\ndeterminers: {}\noccupations: {a: {male: [b]}}\nextra: 1\n", "unknown key"),
    ("code: xx\nlanguage: X\ndeterminers: {}\noccupations: {a: {male: [b], female: [B]}}\n", "under epicene"),
    ("code: xx\nlanguage: X\ndeterminers: {male: [d], female: [d]}\noccupations: {a: {male: [b]}}\n", "marks neither"),
    ("code: xx\nlanguage: X\ndeterminers: {}\noccupations: {a: {mal: [b]}}\n", "keys among"),
    ("code: yy\nlanguage: X\ndeterminers: {}\noccupations: {a: {male: [b]}}\n", "file name says"),
    ("code: xx\nlanguage: X\ndeterminers: {}\noccupations: {a: {male: [b]}}\nwindow: 0\n", "window"),
    ("code: xx\nlanguage: [\n", "not valid YAML"),
])
def test_bad_lexicon_files_name_the_problem(tmp_path, body, match):
    (tmp_path / "xx.yaml").write_text(body, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        load_translation_lexicon("xx", tmp_path)


def test_unknown_language_lists_the_available_ones(tmp_path):
    with pytest.raises(ValueError, match=r"no translation lexicon zz.yaml.*available: \['de', 'es', 'fr'\]"):
        load_translation_lexicon("zz")
    with pytest.raises(ValueError, match="not a folder"):
        load_translation_lexicon("de", tmp_path / "nope")
    with pytest.raises(ValueError, match="language code"):
        load_translation_lexicon("../de")


needs_data = pytest.mark.skipif(not (DATA / "winobias").is_dir() or not (DATA / "winogender").is_dir(),
                                reason=f"WinoBias / Winogender not found under {DATA}")


@needs_data
def test_packaged_lexicons_cover_the_entities_and_keep_sentence_partners_apart(lex):
    from debias.lm.winomt import read_winomt

    items = read_winomt(DATA)
    entities = set(items["entity"])
    for code, lx in lex.items():
        # every entity but the victim (a noun of fixed grammatical gender in all three)
        assert entities - set(lx.forms) == {"victim"}, code
    # no form of an entity is a form of the other person named in the same sentence
    names = sorted(entities, key=len, reverse=True)
    for text, entity in zip(items["text"], items["entity"], strict=True):
        low = (" " + " ".join(tokenize(text)) + " ").replace(f" {entity} ", " # ")  # "worker" in "construction worker"
        others = [o for o in names if o != entity and f" {o} " in low]
        for code, lx in lex.items():
            for o in others:
                if entity in lx.forms and o in lx.forms:
                    assert not set(lx.forms[entity]) & set(lx.forms[o]), (code, entity, o)
