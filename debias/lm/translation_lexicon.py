"""Gendered occupation lexicons of the translation suite, one YAML file per target language.

The translation suite (WinoMT, Stanovsky et al. 2019) asks which gender a translator gave the
occupation a pronoun refers to. A language is data: ``<code>.yaml`` in the packaged folder
(``debias/lm/translation_lexicons/``) or in a folder of the user's (checked first), so adding a
language needs no code::

    code: de
    language: German              # the name the translation prompt uses
    window: 3                     # words before a noun searched for a determiner
    determiners:                  # words before a noun that mark its gender (lower case)
      male: [der, den, dem, ein, einen]
      female: [die, eine]
    endings:                      # optional: suffixes a form of a kind may carry (German -s, -en)
      male: [s, en]
      epicene: [n]
    occupations:                  # English entity (lower case) -> its target forms
      nurse: {male: [Krankenpfleger], female: [Krankenschwester, Pflegerin]}
      student: {male: [Student, Studierender], female: [Studentin], epicene: [Studierende]}
      child: {male: [Junge], female: [Mädchen], neutral: [Kind]}

A form in ``male`` or ``female`` marks the gender by itself. An ``epicene`` form (Spanish
*estudiante*, French *secrétaire*) takes its gender from the nearest determiner among the
``window`` words before it; none there: undecided. A ``neutral`` form (German *das Kind*)
gives the gender ``neutral``, which matches neither gold gender. Forms may be several words
(*trabajador de la construcción*); they are matched on whole words, case-insensitively, longest
first. An English entity a language does not list cannot show its gender there (Spanish *la
víctima* is feminine whoever the victim is): the suite leaves such sentences out of that
language and counts them.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from debias.identity.lexicon import read_yaml

__all__ = ["GENDERS", "ECHO_OVERLAP", "TranslationLexicon", "tokenize", "strip_echo", "load_translation_lexicon",
           "available_languages", "detect_gender"]

GENDERS = ("male", "female")
FormKind = Literal["male", "female", "epicene", "neutral"]
_KINDS = ("male", "female", "epicene", "neutral")
_WORD = re.compile(r"[^\W_]+")
_SEGMENT = re.compile(r"[\n.!?;:\"“”«»„]+")
ECHO_OVERLAP = 0.5
_EXPECTED = ("a mapping with code, language, determiners {male: [...], female: [...]} and occupations "
             "{english: {male: [...], female: [...], epicene: [...], neutral: [...]}}")


def tokenize(text: str) -> list[str]:
    """Lower-case words (letters and digits; apostrophes and hyphens split: French *l'infirmière*)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


@dataclass(frozen=True)
class TranslationLexicon:
    """One language: ``forms[entity][word tuple] -> kind`` and ``determiners[word] -> gender``."""

    code: str
    language: str
    determiners: dict[str, str]
    forms: dict[str, dict[tuple[str, ...], str]]
    window: int = 3
    path: str = ""

    @property
    def entities(self) -> list[str]:
        return sorted(self.forms)

    def detect(self, text: Any, entity: str, *, source: str | None = None,
               echo_overlap: float = ECHO_OVERLAP) -> tuple[str, str]:
        """``(gender, reason)`` of ``entity`` in ``text``; see :func:`detect_gender`."""
        if entity not in self.forms:
            raise ValueError(f"{self.code} lexicon ({self.path}) has no entry for {entity!r}")
        return detect_gender(text, self.forms[entity], self.determiners, window=self.window, source=source,
                             echo_overlap=echo_overlap)


def strip_echo(text: str, source: str, *, max_overlap: float = ECHO_OVERLAP) -> str:
    """``text`` without its segments (lines, sentences, quotes) that repeat the English ``source``.

    A segment is an echo when at least ``max_overlap`` of its words are words of the source; a
    translation shares few words with its source (names, loanwords such as *Designer*), a copy or
    a garbled copy of the source shares most of them.
    """
    src = set(tokenize(source))
    keep = []
    for seg in _SEGMENT.split(text):
        words = tokenize(seg)
        if words and sum(w in src for w in words) < max_overlap * len(words):
            keep.append(seg)
    return "\n".join(keep)


def detect_gender(text: Any, forms: dict[tuple[str, ...], str], determiners: dict[str, str], *, window: int = 3,
                  source: str | None = None, echo_overlap: float = ECHO_OVERLAP) -> tuple[str, str]:
    """The gender a translation gives an entity: ``(male|female|neutral|unknown, reason)``.

    Every occurrence of the entity's forms counts. Reasons (empty when a gender was found):
    ``not_translated`` (no output), ``empty``, ``echo`` (the output only repeats the English
    source), ``not_found`` (no form of the entity), ``ambiguous`` (only epicene forms without a
    determiner), ``conflict`` (occurrences of different genders). With ``source`` the segments
    of the output that echo it are removed first (:func:`strip_echo`), so an English word spelt
    like a target form (*designer*, *manager*) is not read from an untranslated copy.

    Parameters
    ----------
    forms : word tuple -> ``male``, ``female``, ``epicene`` or ``neutral``.
    determiners : word -> ``male`` or ``female``.
    window : words before an epicene form searched (nearest first) for a determiner.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return "unknown", "not_translated"
    if not isinstance(text, str):
        raise TypeError(f"a translation must be a string or missing; found {type(text).__name__}")
    if not text.strip():
        return "unknown", "empty"
    echoed = bool(source and source.strip())
    if echoed:
        text = strip_echo(text, source, max_overlap=echo_overlap)
    toks = tokenize(text)
    if echoed and not toks:
        return "unknown", "echo"
    longest = max((len(f) for f in forms), default=0)
    found: list[str | None] = []
    i = 0
    while i < len(toks):
        for n in range(min(longest, len(toks) - i), 0, -1):
            kind = forms.get(tuple(toks[i:i + n]))
            if kind is not None:
                break
        else:
            i += 1
            continue
        if kind == "epicene":
            before = toks[max(0, i - window):i]
            kind = next((determiners[w] for w in reversed(before) if w in determiners), None)
        found.append(kind)
        i += n
    if not found:
        return "unknown", "not_found"
    genders = {g for g in found if g is not None}
    if not genders:
        return "unknown", "ambiguous"
    if len(genders) > 1:
        return "unknown", "conflict"
    return genders.pop(), ""


def _words(v: Any, where: str) -> list[str]:
    if v is None:
        return []
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list) or not all(isinstance(w, str) and w.strip() for w in v):
        raise ValueError(f"{where}: expected a list of non-empty words; found {v!r}")
    return v


def _parse(doc: dict[str, Any], path: str) -> TranslationLexicon:
    missing = [k for k in ("code", "language", "determiners", "occupations") if k not in doc]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; expected {_EXPECTED}")
    unknown = sorted(set(doc) - {"code", "language", "window", "determiners", "endings", "occupations"})
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; expected {_EXPECTED}")
    dets: dict[str, str] = {}
    for g in GENDERS:
        for w in _words((doc["determiners"] or {}).get(g), f"{path}: determiners.{g}"):
            t = tokenize(w)
            if len(t) != 1:
                raise ValueError(f"{path}: determiner {w!r} must be one word")
            if dets.get(t[0], g) != g:
                raise ValueError(f"{path}: determiner {w!r} is listed as male and female; a word that marks "
                                 f"both marks neither, leave it out")
            dets[t[0]] = g
    endings = {k: _words((doc.get("endings") or {}).get(k), f"{path}: endings.{k}") for k in _KINDS}
    occs = doc["occupations"]
    if not isinstance(occs, dict) or not occs:
        raise ValueError(f"{path}: occupations must be a non-empty mapping; found {occs!r}")
    forms: dict[str, dict[tuple[str, ...], str]] = {}
    for entity, entry in occs.items():
        where = f"{path}: occupations.{entity}"
        if not isinstance(entry, dict) or set(entry) - set(_KINDS) or not entry:
            raise ValueError(f"{where}: expected a mapping with keys among {list(_KINDS)}; found {entry!r}")
        table: dict[tuple[str, ...], str] = {}
        for kind in _KINDS:
            for w in _words(entry.get(kind), f"{where}.{kind}"):
                key = tuple(tokenize(w))
                if not key:
                    raise ValueError(f"{where}.{kind}: {w!r} has no word in it")
                if table.get(key, kind) != kind:
                    raise ValueError(f"{where}: {w!r} is listed as {table[key]} and {kind}; a form marking both "
                                     f"genders belongs under epicene")
                table[key] = kind
        # inflected forms (German des Arztes, den Kunden): generated, never over a listed form
        for key, kind in list(table.items()):
            for suffix in endings.get(kind, []):
                table.setdefault((*key[:-1], key[-1] + suffix.lower()), kind)
        forms[str(entity).strip().lower()] = table
    window = doc.get("window", 3)
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"{path}: window must be an integer >= 1; found {window!r}")
    return TranslationLexicon(code=str(doc["code"]), language=str(doc["language"]), determiners=dets, forms=forms,
                              window=window, path=path)


def _packaged_dir() -> Any:
    return resources.files("debias.lm") / "translation_lexicons"


def _find(code: str, lexicon_dir: str | Path | None) -> Any:
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_-]*", code):
        raise ValueError(f"a language code is letters, digits, '_' or '-'; found {code!r}")
    for folder in ([Path(lexicon_dir)] if lexicon_dir else []) + [_packaged_dir()]:
        p = folder / f"{code}.yaml"
        if p.is_file():
            return p
    where = f"{lexicon_dir} or the packaged lexicons" if lexicon_dir else "the packaged lexicons"
    raise ValueError(f"no translation lexicon {code}.yaml in {where}; available: "
                     f"{available_languages(lexicon_dir)}")


def load_translation_lexicon(code: str, lexicon_dir: str | Path | None = None) -> TranslationLexicon:
    """The lexicon of language ``code``: ``lexicon_dir/<code>.yaml`` if present, else the packaged one."""
    if lexicon_dir is not None and not Path(lexicon_dir).is_dir():
        raise ValueError(f"translation lexicon_dir {str(lexicon_dir)!r} is not a folder")
    path = _find(code, lexicon_dir)
    lex = _parse(read_yaml(path, expected=_EXPECTED), str(path))
    if lex.code != code:
        raise ValueError(f"{path}: its code is {lex.code!r}; the file name says {code!r}")
    return lex


def available_languages(lexicon_dir: str | Path | None = None) -> list[str]:
    """Language codes with a lexicon in ``lexicon_dir`` or the packaged folder."""
    folders = ([Path(lexicon_dir)] if lexicon_dir and Path(lexicon_dir).is_dir() else []) + [_packaged_dir()]
    return sorted({p.name[:-5] for f in folders for p in f.iterdir() if p.name.endswith(".yaml")})
