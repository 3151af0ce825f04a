"""WinoMT's English sentences (Stanovsky et al. 2019): WinoBias and Winogender, read from their files.

Each item is one sentence with one *entity* (the person a gendered pronoun refers to) and that
pronoun's gender, which a faithful translation into a language with grammatical gender has to
give the entity's noun:

* WinoBias (Zhao et al. 2018), ``{pro,anti}_stereotyped_type{1,2}.txt.{dev,test}``: lines
  ``<n> The developer argued with [the designer] because [her] idea ...``. The bracketed
  non-pronoun is the entity; the bracketed pronouns give the gold gender; the file name says
  whether that gender matches the occupation's stereotype (``pro``) or not (``anti``).
* Winogender (Rudinger et al. 2018), ``all_sentences.tsv``: ``sentid`` is
  ``occupation.participant.answer.gender.txt``; the entity is the occupation (answer 0) or the
  other participant (answer 1). Sentences with the neutral pronoun (no gold gender) and those
  whose referent is "someone" (no gendered noun to translate) are not items. An occupation
  entity is ``pro`` when its gold gender is the majority gender of the occupation in the US
  labour statistics of ``occupations-stats.tsv`` (``bls_pct_female``, Rudinger et al.'s own
  reference), else ``anti``; a participant entity has no stereotype label (``none``).

The files are read where the user keeps them; nothing from them is packaged.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

__all__ = ["ITEM_COLUMNS", "WINOBIAS_FILES", "read_winobias", "read_winogender", "read_winomt"]

ITEM_COLUMNS = ["item_id", "source", "subset", "text", "entity", "gold", "stereotype"]
WINOBIAS_FILES = tuple(f"{s}_stereotyped_type{t}.txt.{split}" for s in ("pro", "anti") for t in (1, 2)
                       for split in ("dev", "test"))
_PRONOUNS = {"he": "male", "him": "male", "his": "male", "himself": "male",
             "she": "female", "her": "female", "hers": "female", "herself": "female"}
_LINE = re.compile(r"^\s*(\d+)\s+(.+?)\s*$")
_SPAN = re.compile(r"\[([^\]]*)\]")
_ARTICLE = re.compile(r"^(?:the|a|an)\s+", re.I)


def _winobias_line(line: str, where: str) -> tuple[str, str, str, str]:
    """``(n, text, entity, gold)`` of one WinoBias line."""
    m = _LINE.match(line)
    if not m:
        raise ValueError(f"{where}: expected '<number> <sentence with [brackets]>'; found {line[:80]!r}")
    n, body = m.groups()
    spans = [s.strip() for s in _SPAN.findall(body)]
    genders = {_PRONOUNS[s.lower()] for s in spans if s.lower() in _PRONOUNS}
    entities = [s for s in spans if s.lower() not in _PRONOUNS]
    if len(entities) != 1 or len(genders) != 1:
        raise ValueError(f"{where}: expected one bracketed entity and bracketed pronouns of one gender; "
                         f"found entities {entities} and pronoun genders {sorted(genders)}")
    text = _SPAN.sub(lambda s: s.group(1).strip(), body)
    text = re.sub(r"\b(the)\s+the\b", r"\1", text, flags=re.I)   # "notified the [the chief]"
    text = re.sub(r"\s+'s\b", "'s", re.sub(r"\s+", " ", text))    # the files' tokenised "farmer 's"
    return n, text, _ARTICLE.sub("", entities[0]).lower(), genders.pop()


def read_winobias(folder: str | Path) -> pd.DataFrame:
    """The 8 WinoBias files' sentences as items (:data:`ITEM_COLUMNS`), in file and line order."""
    folder = Path(folder)
    missing = [f for f in WINOBIAS_FILES if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"WinoBias folder {folder} lacks {missing}")
    rows = []
    for name in WINOBIAS_FILES:
        stereo, kind = name.split("_stereotyped_")
        subset = f"{kind.split('.')[0]}_{name.rsplit('.', 1)[1]}"  # type1_dev
        for i, line in enumerate((folder / name).read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            n, text, entity, gold = _winobias_line(line, f"{folder / name}:{i}")
            rows.append({"item_id": f"winobias/{name}/{n}", "source": "winobias", "subset": subset, "text": text,
                         "entity": entity, "gold": gold, "stereotype": stereo})
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def read_winogender(folder: str | Path) -> pd.DataFrame:
    """Winogender's male and female sentences as items (:data:`ITEM_COLUMNS`), in file order."""
    folder = Path(folder)
    sent_path, stats_path = folder / "all_sentences.tsv", folder / "occupations-stats.tsv"
    for p in (sent_path, stats_path):
        if not p.is_file():
            raise FileNotFoundError(f"Winogender folder {folder} lacks {p.name}")
    sents = pd.read_csv(sent_path, sep="\t", dtype=str, keep_default_na=False)
    stats = pd.read_csv(stats_path, sep="\t")
    for df, need, p in ((sents, ["sentid", "sentence"], sent_path), (stats, ["occupation", "bls_pct_female"],
                                                                      stats_path)):
        miss = [c for c in need if c not in df.columns]
        if miss:
            raise ValueError(f"{p}: missing column(s) {miss}; columns present: {list(df.columns)}")
    majority = {str(o): ("female" if float(v) > 50 else "male")
                for o, v in zip(stats["occupation"], stats["bls_pct_female"], strict=True)}
    rows = []
    for sentid, text in zip(sents["sentid"], sents["sentence"], strict=True):
        parts = sentid.split(".")
        if len(parts) != 5 or parts[2] not in ("0", "1"):
            raise ValueError(f"{sent_path}: sentid must be occupation.participant.answer.gender.txt; found {sentid!r}")
        occupation, participant, answer, gender = parts[:4]
        entity = occupation if answer == "0" else participant
        if gender not in ("male", "female") or entity == "someone":
            continue
        stereo = "none"
        if answer == "0":
            stereo = "pro" if majority.get(occupation) == gender else "anti"
        rows.append({"item_id": f"winogender/{sentid[:-4] if sentid.endswith('.txt') else sentid}",
                     "source": "winogender", "subset": "occupation" if answer == "0" else "participant",
                     "text": text.strip(), "entity": entity.lower(), "gold": gender, "stereotype": stereo})
    return pd.DataFrame(rows, columns=ITEM_COLUMNS)


def read_winomt(data_dir: str | Path, *, sources: tuple[str, ...] | list[str] = ("winobias", "winogender")
                ) -> pd.DataFrame:
    """Items of the requested sources from ``data_dir/winobias`` and ``data_dir/winogender``."""
    readers = {"winobias": read_winobias, "winogender": read_winogender}
    bad = [s for s in sources if s not in readers]
    if bad or not sources:
        raise ValueError(f"sources must be a non-empty subset of {list(readers)}; found {list(sources)}")
    parts = [readers[s](Path(data_dir) / s) for s in sources]
    items = pd.concat(parts, ignore_index=True)
    if not items["item_id"].is_unique:
        dup = items.loc[items["item_id"].duplicated(), "item_id"].head(3).tolist()
        raise ValueError(f"item ids must be unique; found duplicates such as {dup}")
    return items
