"""A synthetic comment corpus with the "unintended bias" of real toxicity data, built from the
project's own templates and vocabulary.

Every comment is a template with a person slot; the true label is a property of the template
only (toxic templates insult someone, the others do not), so in truth it is independent of who
is mentioned. The *observed* label (column ``toxic``) carries annotator bias: civil comments that
mention some groups are labelled toxic a quarter of the time (``P_BIASED_LABEL``), plus 2%
symmetric noise. The *sample* is skewed too: identity terms are drawn more often for toxic templates,
and a few groups (``gay``, ``muslim``, ``black``, ``female``, ``transgender``, ``jewish``) much
more often, the way comment corpora over-represent some identities in toxic comments (Dixon et
al. 2018, "Measuring and Mitigating Unintended Bias in Text Classification", AIES). A model
trained on it learns "mentions gay -> toxic", which the rest of the pipeline should measure and
reduce.

Some dirt keeps the cleaning stage honest: HTML tags and entities, URLs, @handles, e-mail
addresses, line breaks, exact duplicate comments (2% copied, plus ~1% of chance template
collisions at 20k rows), and ~1% empty/null texts or unusable
labels. Labels come as strings ("0", "1"; a few "unknown", "", "2", null), as a scraped CSV
would have them.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

# ----------------------------------------------------------------------------- vocabulary
# (group, plural phrase, singular phrase with article). Groups use the lexicon's group keys.
IDENTITY_TERMS: list[tuple[str, str, str]] = [
    ("female", "women", "a woman"),
    ("female", "girls", "a girl"),
    ("female", "ladies", "a lady"),
    ("male", "men", "a man"),
    ("male", "guys", "a guy"),
    ("male", "dads", "a dad"),
    ("gay", "gay people", "a gay person"),
    ("gay", "gay couples", "a gay neighbour"),
    ("lesbian", "lesbians", "a lesbian"),
    ("heterosexual", "straight people", "a straight person"),
    ("bisexual", "bisexual people", "a bisexual person"),
    ("transgender", "trans people", "a trans person"),
    ("transgender", "transgender people", "a transgender person"),
    ("muslim", "Muslims", "a Muslim"),
    ("muslim", "muslim families", "a muslim"),
    ("christian", "Christians", "a Christian"),
    ("jewish", "Jewish people", "a Jewish person"),
    ("hindu", "Hindus", "a Hindu"),
    ("atheist", "atheists", "an atheist"),
    ("black", "Black people", "a Black person"),
    ("black", "black folks", "a black person"),
    ("white", "white people", "a white person"),
    ("asian", "Asian people", "an Asian person"),
    ("latino", "Latinos", "a Latino"),
    ("disabled", "disabled people", "a disabled person"),
    ("disabled", "wheelchair users", "someone in a wheelchair"),
    ("deaf", "deaf people", "a deaf person"),
    ("blind", "blind people", "a blind person"),
    ("autistic", "autistic people", "an autistic person"),
    ("elderly", "old people", "an old person"),
    ("elderly", "elderly people", "an elderly person"),
    ("young", "young people", "a young person"),
    ("mexican", "Mexicans", "a Mexican"),
    ("canadian", "Canadians", "a Canadian"),
    ("chinese", "Chinese people", "a Chinese person"),
]

# Groups drawn BOOST times more often in toxic comments than in others.
BOOSTED_GROUPS: dict[str, float] = {
    "gay": 4.0,
    "muslim": 3.5,
    "black": 3.0,
    "female": 2.5,
    "transgender": 3.0,
    "jewish": 2.5,
}

NEUTRAL_TERMS: list[tuple[str, str]] = [
    ("people", "a person"),
    ("my neighbours", "a neighbour"),
    ("commuters", "a commuter"),
    ("teachers", "a teacher"),
    ("voters", "a voter"),
    ("students", "a student"),
    ("parents", "a parent"),
    ("nurses", "a nurse"),
    ("local business owners", "a shop owner"),
    ("fans", "a fan"),
    ("taxpayers", "a taxpayer"),
    ("my coworkers", "a coworker"),
    ("cyclists", "a cyclist"),
    ("folks around here", "someone from around here"),
]

TOPICS = [
    "the new stadium",
    "the tax proposal",
    "the bus route changes",
    "this movie",
    "the school budget",
    "the housing plan",
    "the election",
    "the new bike lanes",
    "the water bill",
    "the hospital merger",
    "the library hours",
    "the festival",
    "the parking rules",
    "the ferry schedule",
    "the city council vote",
    "the recycling program",
    "the playoff game",
    "the minimum wage debate",
    "the new mall",
    "the rent increase",
]
PLACES = ["market", "library", "bus stop", "gym", "park", "coffee shop", "clinic", "hardware store"]
DAYS = ["Monday", "Tuesday", "Friday", "Saturday", "Sunday"]
EVENTS = ["festival", "marathon", "farmers market", "town hall", "county fair", "parade", "food fair", "game"]
VIRTUES = ["patience", "teamwork", "discipline", "losing well", "hard work", "listening"]
POS_ADJ = ["great", "thoughtful", "helpful", "fair", "balanced", "well written", "interesting"]
INSULTS = ["idiot", "moron", "clown", "loser", "fool", "jerk", "imbecile", "buffoon", "dimwit", "troll"]
INSULT_ADJ = ["stupid", "pathetic", "brainless", "ridiculous", "idiotic", "clueless", "worthless", "dumb"]

# ----------------------------------------------------------------------------- templates
# Slots: {people} {People} {person} {Person} {topic} {topic_cap} {place} {day} {event} {virtue}
# {pos} {insult} {insult_a} {insult_adj} {n}. Each template has one person slot, filled with an
# identity or a neutral term.
CIVIL_TEMPLATES: list[str] = [
    "I think {people} deserve better from the council on {topic}.",
    "As {person}, I found this article on {topic} really {pos}.",
    "Thanks for sharing this, {people} in my town have been talking about {topic} all week.",
    "Has anyone actually asked {people} what they think about {topic}?",
    "{People} I know are split on {topic}, honestly.",
    "Great point. {People} have been saying this about {topic} for years.",
    "I met {person} at the {place} today and we talked about {topic} for an hour.",
    "The interview with {person} was the best part of the piece on {topic}.",
    "Not sure I agree, but {people} raised some fair points about {topic}.",
    "{topic_cap} is going to hit {people} the hardest. Someone should fix it.",
    "I'm {person} and I've lived here for {n} years. The {place} has never been this busy.",
    "Honestly {topic} is a mess, but blaming {people} won't help anyone.",
    "Can we get more coverage of {people} at the {event}?",
    "Shout out to {person} who helped me fix my bike at the {place} on {day} :)",
    "{People} are welcome at our community dinner on {day} at the {place}.",
    "My old coach was {person} and taught me a lot about {virtue}.",
    "Why is everything about {topic} so expensive? {People} on a budget can't keep up.",
    "Lovely photos. {People} at the {event} looked like they had a great time.",
    "Interesting read, I'd like to hear more from {people} about {topic}.",
    "{Person} wrote in to the paper about {topic} and made a {pos} case.",
    "I disagree with the author here, {people} were never consulted about {topic}.",
    "Does anyone know if the {place} is open on {day}? Asking for {person}.",
    "Good to see {people} finally getting a say on {topic}.",
    "This is the most {pos} thing I've read about {topic} in a while, and {people} should read it too.",
    "My best friend is {person} and says {topic} has been handled badly.",
    "Voted no on {topic}. {People} in my building mostly voted yes, we'll see.",
]
TOXIC_TEMPLATES: list[str] = [
    "You're {insult_a}. Nobody cares what {people} think about {topic}.",
    "I'm {person} and you are {insult_a}, plain and simple.",
    "Shut up already, you {insult_adj} {insult}. {People} have better things to do.",
    "Only {insult_a} would write this garbage about {people}.",
    "The author is {insult_a}. Leave {people} alone.",
    "Go away, {insult}. {People} see right through your {insult_adj} lies.",
    "What a {insult_adj} thing to say to {person}. You should be ashamed, {insult}.",
    "Are you really this {insult_adj}? Ask {person} next time before you open your mouth.",
    "Get lost, {insult}. {People} in this city are sick of your {insult_adj} posts.",
    "lol you {insult_adj} {insult}, even {person} knows more about {topic} than you.",
    "Nobody asked, {insult}. Typical {insult_adj} nonsense about {people}.",
    "{People} keep replying to you because you're {insult_a} who can't read.",
]
PREFIXES = ["", "", "", "", "Honestly, ", "Wow. ", "lol ", "Ok so ", "Well, ", "Sigh. "]
SUFFIXES = [
    "",
    "",
    "",
    "",
    " Just my two cents.",
    " :)",
    " Unbelievable!!",
    " Thoughts?",
    " Anyway.",
    " #local",
]

P_TOXIC = 0.15  # share of toxic templates
# Annotator bias (Sap et al. 2019, "The Risk of Racial Bias in Hate Speech Detection", ACL):
# a civil comment that mentions a boosted group is labelled toxic with this probability. The
# true label (the template's) stays independent of identity; the observed label is not, so a
# model can lower its loss by learning "gay -> toxic", exactly the shortcut the pipeline must
# measure and remove. Plus a little symmetric label noise on every row, as in any crowd label.
P_BIASED_LABEL = 0.25
P_LABEL_NOISE = 0.02
# P(identity term | template kind): 0.85 * 0.37 + 0.15 * 0.57 = 0.40 of rows mention an identity.
P_IDENTITY = {0: 0.37, 1: 0.57}


def _article(word: str) -> str:
    return ("an " if word[0] in "aeiou" else "a ") + word


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


def _fill(template: str, people: str, person: str, rng: np.random.Generator) -> str:
    topic = TOPICS[rng.integers(len(TOPICS))]
    insult = INSULTS[rng.integers(len(INSULTS))]
    return template.format(
        people=people,
        People=_cap(people),
        person=person,
        Person=_cap(person),
        topic=topic,
        topic_cap=_cap(topic),
        place=PLACES[rng.integers(len(PLACES))],
        day=DAYS[rng.integers(len(DAYS))],
        event=EVENTS[rng.integers(len(EVENTS))],
        virtue=VIRTUES[rng.integers(len(VIRTUES))],
        pos=POS_ADJ[rng.integers(len(POS_ADJ))],
        insult=insult,
        insult_a=_article(insult),
        insult_adj=INSULT_ADJ[rng.integers(len(INSULT_ADJ))],
        n=int(rng.integers(2, 40)),
    )


def _dirty(text: str, rng: np.random.Generator, i: int) -> tuple[str, str]:
    # At most one kind of dirt per row, so tests and the cleaning stage can count each.
    r = rng.random()
    if r < 0.03:
        return f"<p>{text.replace(' and ', ' &amp; ')}</p>", "html"
    if r < 0.05:
        return text.replace(". ", ".<br> ", 1) + " &quot;sic&quot;", "html"
    if r < 0.08:
        host = ["www.example.com/news", "bit.ly", "example.org/story", "news.example.net/a"][i % 4]
        return f"{text} More here: https://{host}/{i:x}", "url"
    if r < 0.12:
        return f"@user_{int(rng.integers(100, 99999))} {text}", "handle"
    if r < 0.13:
        return f"{text} Email me at reader{i}@example.com", "email"
    if r < 0.14:
        return f"{text}\n\nEdit: fixed a typo", "newline"
    return text, ""


def generate_demo_corpus(n_rows: int = 20000, *, seed: int = 0, with_meta: bool = False) -> pd.DataFrame:
    """The synthetic demo corpus.

    Parameters
    ----------
    n_rows : int
        Exact number of rows (including duplicates and bad rows).
    seed : int
    with_meta : bool
        Also return how each row was made: ``template`` (its index, ``t<k>`` for civil and
        ``x<k>`` for toxic templates), ``template_toxic`` (0/1), ``identity_group`` (None for a
        neutral term), ``identity_term`` (the plural form of the term drawn), ``dirt`` (``""``, ``html``, ``url``, ``handle``,
        ``email``, ``newline``, ``duplicate``, ``empty_text``, ``bad_label``).

    Returns
    -------
    pandas.DataFrame with columns ``id`` (``demo-000000``...), ``text`` (str or None) and
    ``toxic`` (str: "0"/"1", or a bad value such as "unknown").
    """
    if not isinstance(n_rows, int | np.integer) or n_rows < 0:
        raise ValueError(f"n_rows must be a non-negative int; found {n_rows!r}")
    rng = np.random.default_rng(seed)
    groups = [g for g, _, _ in IDENTITY_TERMS]
    base = np.ones(len(IDENTITY_TERMS))
    w = {
        0: base / base.sum(),
        1: (b := base * np.array([BOOSTED_GROUPS.get(g, 1.0) for g in groups])) / b.sum(),
    }

    # Draw the per-row choices up front (vectorised); only the string filling loops.
    toxic_v = (rng.random(n_rows) < P_TOXIC).astype(np.int64)
    k_v = np.where(
        toxic_v == 1,
        rng.integers(len(TOXIC_TEMPLATES), size=n_rows),
        rng.integers(len(CIVIL_TEMPLATES), size=n_rows),
    )
    has_id = rng.random(n_rows) < np.where(toxic_v == 1, P_IDENTITY[1], P_IDENTITY[0])
    u_term = rng.random(n_rows)
    term_v = np.where(
        toxic_v == 1,
        np.searchsorted(np.cumsum(w[1]), u_term, side="right"),
        np.searchsorted(np.cumsum(w[0]), u_term, side="right"),
    ).clip(0, len(IDENTITY_TERMS) - 1)
    neutral_v = rng.integers(len(NEUTRAL_TERMS), size=n_rows)
    rows = []
    for i in range(n_rows):
        toxic, k = int(toxic_v[i]), int(k_v[i])
        templates = TOXIC_TEMPLATES if toxic else CIVIL_TEMPLATES
        if has_id[i]:
            group, people, person = IDENTITY_TERMS[int(term_v[i])]
        else:
            group = None
            people, person = NEUTRAL_TERMS[int(neutral_v[i])]
        text = _fill(templates[k], people, person, rng)
        text = PREFIXES[rng.integers(len(PREFIXES))] + text + SUFFIXES[rng.integers(len(SUFFIXES))]
        if rng.random() < 0.08:
            text = text.lower()
        text, dirt = _dirty(text, rng, i)
        observed = toxic
        if not toxic and group in BOOSTED_GROUPS and rng.random() < P_BIASED_LABEL:
            observed = 1
        if rng.random() < P_LABEL_NOISE:
            observed = 1 - observed
        rows.append(
            {
                "text": text,
                "toxic": str(observed),
                "template": ("x" if toxic else "t") + str(k),
                "template_toxic": toxic,
                "identity_group": group,
                "identity_term": people if group else None,
                "dirt": dirt,
            }
        )
    n = len(rows)
    if n >= 2:
        # ~2% exact duplicates of an earlier comment (same text and label, new id), ~0.5% empty
        # or null texts and ~0.5% unusable labels, on distinct rows.
        n_dup, n_empty, n_bad = round(0.02 * n), round(0.005 * n), round(0.005 * n)
        chosen = rng.choice(np.arange(1, n), size=min(n - 1, n_dup + n_empty + n_bad), replace=False)
        dup, empty, bad = np.split(chosen, [n_dup, n_dup + n_empty])
        spoilt = set(empty.tolist()) | set(bad.tolist())
        for r in np.sort(dup):  # ascending, so a source row is final before it is copied
            src = int(rng.integers(0, r))
            while src in spoilt:  # copy a usable row, so duplicates agree on their label
                src = int(rng.integers(0, r))
            rows[r] = {**rows[src], "dirt": "duplicate"}
        for r in empty:
            rows[r] = {
                **rows[r],
                "text": [None, "", "   ", "&nbsp;"][int(rng.integers(4))],
                "dirt": "empty_text",
            }
        for r in bad:
            rows[r] = {
                **rows[r],
                "toxic": [None, "unknown", "", "2", "?"][int(rng.integers(5))],
                "dirt": "bad_label",
            }
    df = pd.DataFrame(
        rows,
        columns=["text", "toxic", "template", "template_toxic", "identity_group", "identity_term", "dirt"],
    )
    df.insert(0, "id", [f"demo-{i:06d}" for i in range(n)])
    df["template_toxic"] = df["template_toxic"].astype(np.int64)
    if not with_meta:
        df = df[["id", "text", "toxic"]]
    return df


def write_demo_corpus(path: str | os.PathLike, n_rows: int = 20000, seed: int = 0) -> Path:
    """Write :func:`generate_demo_corpus` to ``path``: ``.parquet``, ``.csv``, ``.tsv`` or
    ``.jsonl`` by extension, through a temporary file renamed into place."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".tsv", ".jsonl"):
        raise ValueError(f"demo corpus path must end in .parquet, .csv, .tsv or .jsonl; found {path.name!r}")
    df = generate_demo_corpus(n_rows, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        if suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        elif suffix in (".csv", ".tsv"):
            df.to_csv(tmp, index=False, sep="," if suffix == ".csv" else "\t")
        else:
            df.to_json(tmp, orient="records", lines=True, force_ascii=False)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
