"""PII masking for the clean step: typed placeholders, checksums where a format has one.

Two kinds of pattern, because of what each engine can do:

* e-mails, URLs and user handles are plain shapes: RE2 regexes run by pyarrow over the whole
  column (:data:`RE2_MASKS`, applied by :mod:`debias.corpus.clean`);
* the digit-heavy kinds (cards, IBANs, SSNs, NINOs, IPs, MACs, phones) need a check a regex
  cannot make (Luhn, mod-97, :mod:`ipaddress`) or look-around (so two adjacent phones are both
  found). They run as one precompiled Python regex with a validating callback, and only on the
  rows a cheap RE2 pre-check selects (three digits close together, or hex around a colon), so
  a row without digits costs one C++ scan.

The Python regex is one alternation in priority order (IBAN, card, SSN, NINO, MAC, IPv6, IPv4,
phone). A candidate that fails its check, or whose kind is switched off, is left as it was but
still consumed, so a 16-digit number that fails Luhn is not then masked in part as a phone.

Counts: every kind has its own placeholder, so :func:`placeholder_counts` before and after
masking gives the number masked per kind (the step never removes a placeholder already there).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["KINDS", "PLACEHOLDERS", "RE2_MASKS", "iban_valid", "luhn_valid", "mask_digit_kinds",
           "mask_digit_texts", "placeholder_counts"]

# kind -> (config flag, placeholder). The manifest's ``pii_masked`` is keyed by kind.
KINDS: dict[str, tuple[str, str]] = {
    "email": ("mask_emails", "[EMAIL]"),
    "url": ("mask_urls", "[URL]"),
    "user": ("mask_users", "[USER]"),
    "iban": ("mask_ibans", "[IBAN]"),
    "card": ("mask_cards", "[CARD]"),
    "ssn": ("mask_ssns", "[SSN]"),
    "nino": ("mask_ninos", "[NINO]"),
    "mac": ("mask_macs", "[MAC]"),
    "ip": ("mask_ips", "[IP]"),
    "phone": ("mask_phones", "[PHONE]"),
}
PLACEHOLDERS = {kind: ph for kind, (_, ph) in KINDS.items()}

# ---- RE2 kinds (pyarrow): no look-around, so the group before a handle is kept by \1 ---------

# Local part: ASCII/Unicode letters and digits (IDN mail) or a quoted string; domain labels of
# letters, digits and hyphens (Unicode labels as written, not punycode).
_EMAIL = (r'(?:"[^"\s@<>]+(?: [^"\s@<>]+)*"|[\pL\pN][\pL\pN._%+-]*)'
          r"@[\pL\pN-]+(?:\.[\pL\pN-]+)*\.\pL{2,}")
# Scheme or www. links, then bare domains with a common TLD. The last character may not be
# sentence punctuation, so "see http://x.org/a." keeps its full stop.
_URL_END = r"[^\s<>\"'.,;:!?)\]}]"
_URL = (
    r"(?i)(?:\b(?:https?|ftp)://|\bwww\.)[^\s<>\"]*" + _URL_END
    + r"|\b[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:com|org|net|edu|gov|io|ly|co|uk|info|biz)"
    r"\b(?:/[^\s<>\"]*" + _URL_END + r")?"
)
# @handle (dots inside: "@john.doe"), and reddit's u/name and /u/name.
_USER = r"(^|[^\pL\pN_@\[])@[A-Za-z0-9_]{1,50}(?:\.[A-Za-z0-9_]+)*"
_REDDIT_USER = r"(^|[^\pL\pN_/])/?u/[A-Za-z0-9_-]{3,20}"

# (kind, pattern, replacement); e-mails before URLs (a domain is in both), URLs before handles.
# (Running each only on the rows holding "@" or "u/" was measured: no faster, pyarrow's literal
# match costs about what these regexes cost.)
RE2_MASKS = (
    ("email", _EMAIL, "[EMAIL]"),
    ("url", _URL, "[URL]"),
    ("user", _USER, r"\1[USER]"),
    ("user", _REDDIT_USER, r"\1[USER]"),
)

# ---- digit kinds (Python re, validated) ---------------------------------------------------------

# Rows worth the Python pass: three digits with at most one separator between them, or hex
# digits around a colon (MACs, IPv6 without three digits in a row).
PRECHECK = r"\d[ ./:-]?\d[ ./:-]?\d|[0-9A-Fa-f]::?[0-9A-Fa-f]"

_START = r"(?<![\w+@.-])"  # not inside a word, a longer number, a dotted run or after '+'
_END = r"(?!\w|[.,]\d)"  # nor followed by more of the same ("1.2.3.4.5", "12,34")
_HEX = "[0-9A-Fa-f]"
_DIGIT_KINDS = re.compile(_START + r"(?:" + r"|".join([
    r"(?P<iban>[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,3})?)",
    r"(?P<card>\d{4}(?P<cs>[ -]?)\d{4}(?P=cs)\d{4}(?P=cs)\d{4}|3[47]\d{2}(?P<amx>[ -]?)\d{6}(?P=amx)\d{5})",
    r"(?P<ssn>(?!000|666|9)\d{3}-(?!00)\d{2}-(?!0000)\d{4})",
    r"(?P<nino>[A-CEGHJ-TW-Za-ceghj-tw-z][A-CEGHJ-NP-TW-Za-ceghj-np-tw-z]"
    r"(?: \d{2} \d{2} \d{2} |\d{6})[A-Da-d])",
    rf"(?P<mac>{_HEX}{{2}}(?P<ms>[:-]){_HEX}{{2}}(?:(?P=ms){_HEX}{{2}}){{4}}|{_HEX}{{4}}\.{_HEX}{{4}}\.{_HEX}{{4}})",
    rf"(?P<ipv6>{_HEX}{{0,4}}:{_HEX}{{0,4}}:[0-9A-Fa-f:.]*)",
    r"(?P<ipv4>\d{1,3}(?:\.\d{1,3}){3})",
    r"(?P<phone>"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +CC ...
    r"|00[1-9]\d{0,2}[ .-](?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]\d{2,4}){1,4}"  # 00CC ...
    r"|(?:1[ .-]?)?(?:\(\d{3}\)[ .-]?|\d{3}[ .-]?)\d{3}[ .-]?\d{4}"  # NANP, 1-800-...
    r"|0[1-9]\d{0,3}(?P<ps>[ -])\d{2,8}(?:(?P=ps)\d{2,8}){0,3}"  # national with a trunk 0: UK, DE, FR
    r"|[6-9]\d{4}[ -]\d{5})"  # India, 5+5
]) + r")" + _END)

_NINO_BAD_PREFIX = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def luhn_valid(digits: str) -> bool:
    """The Luhn check digit test (ISO/IEC 7812-1, annex B) on a string of digits."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """ISO 13616 check: 15-34 alphanumerics, first four moved to the end, letters as 10..35,
    the number mod 97 is 1."""
    s = iban.replace(" ", "").upper()
    if not 15 <= len(s) <= 34 or not s.isalnum() or not s.isascii():
        return False
    s = s[4:] + s[:4]
    return int("".join(str(int(c, 36)) for c in s)) % 97 == 1


def _ip_valid(s: str, version: int) -> bool:
    try:
        (ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address)(s)
    except ValueError:
        return False
    return True


def _ipv6(cand: str) -> int:
    """Length of the longest prefix of ``cand`` that is an IPv6 address worth masking (at least
    one digit and six characters, so "::1" and "a::b" stay), or 0."""
    for end in range(min(len(cand), 45), 5, -1):  # 45: the longest form; trailing ':' or '.' of the sentence, or a port
        s = cand[:end]
        if s[-1] not in ":." and any(c.isdigit() for c in s) and _ip_valid(s, 6):
            return end
    return 0


def _phone_digits_ok(s: str) -> bool:
    n = sum(c.isdigit() for c in s)
    return 9 <= n <= 15 if s[0] in "+0" else True


def _replace(m: re.Match, on: frozenset[str]) -> str:
    kind = m.lastgroup
    s = m.group(kind)
    if kind == "iban":
        if "iban" in on:
            # The pattern may have taken a following word as a 4-character group: the longest
            # valid prefix of whole groups is the IBAN.
            for end in range(len(s), 14, -1):
                if (end == len(s) or s[end] == " ") and iban_valid(s[:end]):
                    return "[IBAN]" + s[end:]
        return s
    if kind == "card":
        return "[CARD]" if "card" in on and luhn_valid(re.sub(r"\D", "", s)) else s
    if kind == "nino":
        return "[NINO]" if "nino" in on and s[:2].upper() not in _NINO_BAD_PREFIX else s
    if kind == "ipv4":
        return "[IP]" if "ip" in on and _ip_valid(s, 4) else s
    if kind == "ipv6":
        end = _ipv6(s) if "ip" in on else 0
        return "[IP]" + s[end:] if end else s
    if kind == "phone":
        return "[PHONE]" if "phone" in on and _phone_digits_ok(s) else s
    return PLACEHOLDERS[kind] if kind in on else s  # ssn, mac: the pattern is the check


def mask_digit_texts(texts: list[str], *, kinds: frozenset[str]) -> list[str]:
    """Mask the digit kinds named in ``kinds`` in each text (no pre-check)."""
    def repl(m: re.Match) -> str:
        return _replace(m, kinds)

    return [_DIGIT_KINDS.sub(repl, s) for s in texts]


def mask_digit_kinds(arr: pa.Array, *, kinds: frozenset[str]) -> pa.Array:
    """:func:`mask_digit_texts` on the rows of a utf8 array that pass the RE2 pre-check."""
    if not kinds & {"iban", "card", "ssn", "nino", "mac", "ip", "phone"} or len(arr) == 0:
        return arr
    has = pc.fill_null(pc.match_substring_regex(arr, PRECHECK), False)
    idx = np.flatnonzero(np.asarray(has, dtype=bool))
    if len(idx) == 0:
        return arr
    fixed = mask_digit_texts(arr.take(pa.array(idx)).to_pylist(), kinds=kinds)
    return pc.replace_with_mask(arr, has, pa.array(fixed, type=arr.type))


def placeholder_counts(arr: pa.Array, kinds: Any) -> dict[str, int]:
    """Occurrences of each kind's placeholder in ``arr`` (nulls count 0).

    One literal scan finds the rows with a ``[``; the per-kind counts run on those rows only
    (before masking usually none, after it the rows masked), not ten passes over the column.
    """
    kinds = list(kinds)
    has = pc.fill_null(pc.match_substring(arr, "["), False)
    n = int(pc.sum(has).as_py() or 0)
    if n == 0:
        return dict.fromkeys(kinds, 0)
    sub = arr.filter(has) if n < len(arr) else arr
    return {k: int(pc.sum(pc.count_substring(sub, PLACEHOLDERS[k])).as_py() or 0) for k in kinds}
