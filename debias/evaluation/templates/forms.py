"""Ways to name a member of an identity group, and the template slots they fill.

The lexicons (``debias/identity/lexicons``) list every word that *mentions* a group: adjectives,
singular and plural nouns, places, practices ("synagogue", "womanhood"). That is what finding a
mention in text needs, but a sentence cannot be built from it: "I am {term}." gives "I am
synagogues.". A *form* is one grammatical way to name a member of a group:

* an adjective (``Muslim``, ``elderly``), which names a person as "an elderly person" and
  people as "elderly people";
* a noun with its plural (``[woman, women]``), which names them as "a woman" and "women".

The packaged forms live in ``forms.yaml`` beside the template sets, grouped by axis for reading::

    gender:
      female: [[woman, women], [girl, girls]]   # nouns: [singular, plural]
    religion:
      jewish: [Jewish, [Jew, Jews]]             # an adjective is a plain string

Template slots (each variant of a template holds exactly one):

==============  ==========================================================================
``{person}``    a singular noun phrase with its indefinite article: "an elderly person",
                "a European", "a woman"
``{people}``    the plural: "elderly people", "Europeans", "women"
``{adj}``       the adjective alone ("Muslim"); a template using it skips the forms (and the
                groups) that have none
``{term}``      the raw lexicon term (user-written template sets; not filled from forms)
==============  ==========================================================================

``{Person}``, ``{People}`` and ``{Adj}`` are the same with the first letter capitalised, for a
slot that starts a sentence ("Women are ...").

The article goes by sound, not by letter (:func:`indefinite_article`): "an hour", "an LGBTQ
person", "a European", "a Ukrainian", "a university".
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["FORMS_FILE", "FORM_SLOTS", "TERM_SLOT", "Form", "fill_slot", "find_slots", "indefinite_article",
           "load_forms", "missing_forms", "parse_forms"]

FORMS_FILE = "forms.yaml"
PACKAGED_FORMS = Path(__file__).parent / FORMS_FILE
TERM_SLOT = "{term}"
# slot -> (what it renders, whether the first letter is capitalised)
FORM_SLOTS: dict[str, tuple[str, bool]] = {
    "{person}": ("person", False), "{Person}": ("person", True),
    "{people}": ("people", False), "{People}": ("people", True),
    "{adj}": ("adj", False), "{Adj}": ("adj", True),
}
_SLOT_RE = re.compile("|".join(re.escape(s) for s in (TERM_SLOT, *FORM_SLOTS)))
_GROUP_RE = re.compile(r"^[a-z][a-z0-9_]*$")

# Words spelt with a vowel but said with a consonant ("a European", "a university", "a one-off"),
# by prefix of the lower-cased first word.
_A_PREFIXES = ("eu", "ewe", "uni", "use", "usu", "uti", "uri", "uro", "ukr", "ukulele", "ugand", "urug",
               "utopi", "ubiq", "unanim", "one", "once")
# ... and the "un-" words among them that are said with a vowel after all ("an uninsured").
_AN_PREFIXES = ("unin", "unim", "unid", "onerous")
# Words spelt with a consonant but said with a vowel: a silent h.
_AN_WORDS = ("hour", "honest", "honour", "honor", "heir")
# Letters whose names start with a vowel sound, for acronyms said letter by letter ("an LGBTQ").
_VOWEL_LETTERS = set("aefhilmnorsx")
_FIRST_WORD_RE = re.compile(r"[A-Za-z0-9+]+")


def indefinite_article(phrase: str) -> str:
    """``"a"`` or ``"an"`` for a phrase, by the sound of its first word.

    Rules, in order: an acronym in capitals or a single letter goes by the letter's name ("an
    LGBTQ person", "an x-ray"); a number by its spoken form ("an 8", "an 18-year-old");
    known silent-h words take "an" ("an hour", "an honest"); vowel letters said as a consonant
    take "a" ("a European", "a Ukrainian", "a university", "a one-off", but "an uninsured");
    otherwise a vowel letter takes "an". Acronyms said as words ("a NASA engineer") are not
    told apart from those spelt out.
    """
    m = _FIRST_WORD_RE.search(phrase)
    if m is None:
        raise ValueError(f"expected a phrase starting with a word; found {phrase!r}")
    word = m.group(0)
    low = word.lower()
    if word[0].isdigit():
        digits = re.match(r"\d+", word).group(0)
        spoken_eight = digits.startswith("8")
        spoken_eleven_or_eighteen = digits[:2] in ("11", "18") and len(digits) % 3 == 2
        return "an" if spoken_eight or spoken_eleven_or_eighteen else "a"
    letters = word.rstrip("+")
    if len(letters) == 1 or (len(letters) > 1 and letters.isupper()):
        return "an" if letters[0].lower() in _VOWEL_LETTERS else "a"
    if low.startswith(_AN_WORDS):
        return "an"
    if low.startswith(_AN_PREFIXES):
        return "an"
    if low.startswith(_A_PREFIXES):
        return "a"
    return "an" if low[0] in "aeiou" else "a"


def _capitalise(s: str) -> str:
    return s[:1].upper() + s[1:]


@dataclass(frozen=True)
class Form:
    """One way to name a member of ``group``: an adjective (``plural is None``) or a noun.

    ``text`` is the adjective or the singular noun, as written in the forms file.
    """

    group: str
    text: str
    plural: str | None = None

    @property
    def is_adjective(self) -> bool:
        return self.plural is None

    @property
    def name(self) -> str:
        """The singular noun phrase without its article: "elderly person", "woman"."""
        return f"{self.text} person" if self.is_adjective else self.text

    @property
    def person(self) -> str:
        """The singular noun phrase with its article: "an elderly person", "a woman"."""
        return f"{indefinite_article(self.name)} {self.name}"

    @property
    def people(self) -> str:
        """The plural: "elderly people", "women"."""
        return f"{self.text} people" if self.is_adjective else str(self.plural)

    def render(self, slot: str) -> str:
        """The words for one slot of :data:`FORM_SLOTS` (``"{people}"`` -> "women")."""
        if slot not in FORM_SLOTS:
            raise ValueError(f"expected one of the slots {sorted(FORM_SLOTS)}; found {slot!r}")
        what, capital = FORM_SLOTS[slot]
        if what == "adj":
            if not self.is_adjective:
                raise ValueError(f"form {self.text!r} of group {self.group!r} is a noun; slot {slot} needs an "
                                 "adjective")
            words = self.text
        else:
            words = self.person if what == "person" else self.people
        return _capitalise(words) if capital else words


def find_slots(pattern: str) -> list[str]:
    """Every slot (``{term}``, ``{person}``, ...) in a template sentence, in order."""
    return _SLOT_RE.findall(pattern)


def fill_slot(pattern: str, form: Form | str) -> str:
    """A template sentence with its one slot filled.

    Parameters
    ----------
    pattern : a template sentence holding exactly one slot.
    form : a :class:`Form`, or a plain word: it fills ``{term}`` as it is and the form slots as an
        adjective ("muslim" -> "a muslim person", "muslim people"), so callers that fill
        templates from a word list (the swap table's rows) keep working on the packaged sets.
    """
    slots = find_slots(pattern)
    if len(slots) != 1:
        raise ValueError(f"expected exactly one slot in the template; found {len(slots)} in {pattern!r}")
    slot = slots[0]
    if isinstance(form, str):
        words = form if slot == TERM_SLOT else Form("", form).render(slot)
    elif slot == TERM_SLOT:
        words = form.text
    else:
        words = form.render(slot)
    return pattern.replace(slot, words)


_SHAPE = ("a mapping of axis -> group -> list of forms, each form an adjective (a string) or a noun "
          "[singular, plural]")


def parse_forms(doc: Any, *, where: str = "forms") -> dict[str, tuple[Form, ...]]:
    """Forms from a parsed forms file (see the module docstring): group -> its forms.

    Raises
    ------
    ValueError
        A malformed entry, a group named twice, or one noun phrase (:attr:`Form.name`) given to two
        groups or twice to one: a sentence must name one form of one group.
    """
    if not isinstance(doc, dict) or not doc:
        raise ValueError(f"{where}: expected {_SHAPE}; found {type(doc).__name__}")
    out: dict[str, tuple[Form, ...]] = {}
    owner: dict[str, str] = {}
    for axis, groups in doc.items():
        if not isinstance(groups, dict) or not groups:
            raise ValueError(f"{where}: axis {axis!r}: expected a mapping of group -> forms; found {groups!r}")
        for group, items in groups.items():
            if not isinstance(group, str) or not _GROUP_RE.match(group):
                raise ValueError(f"{where}: group name {group!r} must be a lower-case identifier")
            if group in out:
                raise ValueError(f"{where}: group {group!r} is listed twice")
            if not isinstance(items, list) or not items:
                raise ValueError(f"{where}: group {group!r}: expected a non-empty list of forms; found {items!r}")
            forms = []
            for item in items:
                if isinstance(item, str) and item.strip():
                    form = Form(group, " ".join(item.split()))
                elif (isinstance(item, list) and len(item) == 2
                      and all(isinstance(x, str) and x.strip() for x in item)):
                    form = Form(group, " ".join(item[0].split()), " ".join(item[1].split()))
                else:
                    raise ValueError(f"{where}: group {group!r}: expected an adjective (a string) or a noun "
                                     f"[singular, plural]; found {item!r}")
                key = form.name.casefold()
                if key in owner:
                    raise ValueError(f"{where}: {form.name!r} is a form of group {owner[key]!r} and again of "
                                     f"group {group!r}")
                owner[key] = group
                forms.append(form)
            out[group] = tuple(forms)
    return out


@functools.lru_cache(maxsize=8)
def _read(path: str, mtime_ns: int) -> dict[str, tuple[Form, ...]]:  # mtime: an edited file is read again
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ValueError(f"{p}: is not valid YAML ({e}); expected {_SHAPE}") from None
    return parse_forms(doc, where=str(p))


def load_forms(template_dir: str | Path | None = None) -> dict[str, tuple[Form, ...]]:
    """The forms of every group: the packaged ``forms.yaml``, then ``<template_dir>/forms.yaml``.

    A user's forms file (beside their template sets) adds groups of their own lexicon, or
    replaces the packaged forms of a group it names.
    """
    forms = dict(_read(str(PACKAGED_FORMS), PACKAGED_FORMS.stat().st_mtime_ns))
    if template_dir is not None:
        user = Path(template_dir) / FORMS_FILE
        if user.is_file():
            forms.update(_read(str(user.resolve()), user.stat().st_mtime_ns))
    return forms


def missing_forms(groups: Mapping[str, Any] | list[str], forms: Mapping[str, tuple[Form, ...]]) -> list[str]:
    """The groups that have no form (sorted)."""
    return sorted(g for g in groups if not forms.get(g))
