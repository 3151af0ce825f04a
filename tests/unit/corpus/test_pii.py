"""PII masking: every kind masked with its placeholder, a table of look-alikes left alone, the
per-kind switches and counts. Luhn, mod-97 and IP checks are re-derived here as oracles."""

from __future__ import annotations

import ipaddress
import re

import pandas as pd
import pytest

from debias.config import CleanConfig
from debias.corpus.clean import REJECT_REASONS, clean_batch, clean_text
from debias.corpus.pii import KINDS, PLACEHOLDERS, iban_valid, luhn_valid
from debias.corpus.prepare import merge_pii_counts

P = CleanConfig().model_dump()


def _luhn(number: str) -> bool:  # oracle: double every second digit from the right
    digits = [int(c) for c in number if c.isdigit()][::-1]
    return sum(d if i % 2 == 0 else sum(divmod(2 * d, 10)) for i, d in enumerate(digits)) % 10 == 0


def _iban(s: str) -> bool:  # oracle: the mod-97 rule computed piecewise, as banks do by hand
    s = s.replace(" ", "")
    rearranged = s[4:] + s[:4]
    rem = 0
    for c in rearranged:
        for d in (str(ord(c) - 55) if c.isalpha() else c):
            rem = (rem * 10 + int(d)) % 97
    return rem == 1


def _is_ip(s: str) -> bool:
    try:
        ipaddress.ip_address(s)
    except ValueError:
        return False
    return True


# (kind, value as written in a sentence). Each value is wrapped as "x {value} y".
POSITIVES = [
    ("card", "4111 1111 1111 1111"),
    ("card", "4111-1111-1111-1111"),
    ("card", "5500000000000004"),
    ("card", "3782 822463 10005"),  # Amex 4-6-5
    ("card", "378282246310005"),
    ("iban", "GB82 WEST 1234 5698 7654 32"),
    ("iban", "DE89370400440532013000"),
    ("iban", "FR14 2004 1010 0505 0001 3M02 606"),
    ("ssn", "123-45-6789"),
    ("nino", "QQ 12 34 56 C"),
    ("nino", "AB123456C"),
    ("ip", "192.168.1.10"),
    ("ip", "8.8.8.8"),
    ("ip", "2001:db8::8a2e:370:7334"),
    ("ip", "fe80::1ff:fe23:4567:890a"),
    ("mac", "00:1A:2B:3C:4D:5E"),
    ("mac", "00-1a-2b-3c-4d-5e"),
    ("mac", "001a.2b3c.4d5e"),
    ("phone", "020 7946 0958"),
    ("phone", "07700 900123"),
    ("phone", "030 12345678"),
    ("phone", "06 12 34 56 78"),
    ("phone", "98765 43210"),
    ("phone", "0044 20 7946 0958"),
    ("phone", "+44 20 7946 0958"),
    ("phone", "+44 (0)20 7946 0958"),
    ("phone", "1-800-555-0199"),
    ("phone", "(555) 123-4567"),
    ("phone", "555.123.4567"),
    ("email", "josé@bücher.de"),
    ("email", '"john doe"@example.com'),
    ("email", "bob.smith+x@mail.example.co.uk"),
    ("user", "@john.doe"),
    ("user", "@jack_1"),
    ("user", "u/some_name"),
    ("user", "/u/Other-Name"),
]


def test_oracles_agree_on_the_table():
    for kind, value in POSITIVES:
        if kind == "card":
            assert _luhn(value) and luhn_valid(re.sub(r"\D", "", value)), value
        if kind == "iban":
            assert _iban(value) and iban_valid(value), value
        if kind == "ip":
            assert _is_ip(value), value
    assert not _luhn("4111 1111 1111 1112") and not luhn_valid("4111111111111112")
    assert not _iban("GB82 WEST 1234 5698 7654 33") and not iban_valid("GB82WEST12345698765433")


@pytest.mark.parametrize("kind, value", POSITIVES)
def test_each_kind_masked_with_its_placeholder(kind, value):
    out = clean_text(f"x {value} y")
    assert out == f"x {PLACEHOLDERS[kind]} y"
    # nothing of the value is left: no run of 2+ of its digits or letters survives
    for piece in re.findall(r"[0-9A-Za-z\u00e0-\u00ff]{2,}", value):
        assert piece not in out.replace(PLACEHOLDERS[kind], ""), (value, out)


@pytest.mark.parametrize("raw, want", [
    ("call 555-123-4567 555-987-6543", "call [PHONE] [PHONE]"),
    ("call 555-123-4567, 555-987-6543", "call [PHONE], [PHONE]"),
    ("call 555-123-4567/555-987-6543", "call [PHONE]/[PHONE]"),
    ("Tel:555-123-4567.", "Tel:[PHONE]."),
    ("GB82 WEST 1234 5698 7654 32 from bob", "[IBAN] from bob"),  # a word is not an IBAN group
    ("host 2001:db8::1: down", "host [IP]: down"),
    ("see 10.0.0.1:8080 now", "see [IP]:8080 now"),
    ("mail josé@bücher.de or @john.doe", "mail [EMAIL] or [USER]"),
    ("ask u/name on reddit.com/r/x", "ask [USER] on [URL]"),
])
def test_in_context(raw, want):
    assert clean_text(raw) == want


NEGATIVES = [
    "$1,234.56", "1 234,56 €", "€1.234,56", "2019-2020", "in 1999", "order #123456", "v1.2.3",
    "3.11.4", "python 3.11.4 released", "2024-01-15", "15/01/2024", "01-15-2024", "12:30", "12:30:45",
    "at 9:05 pm", "45%", "99.5%", "7", "42 and 1000", "room 101", "4111 1111 1111 1112",
    "1234567812345678", "1234-5678-1234-5678", "ids 12345678901234 stay", "666-45-6789",
    "000-12-3456", "912-34-5678", "GB82 WEST 1234 5698 7654 33", "999.1.1.1", "1.2.3.256",
    "std::vector", "a::b", "::1", "12:34:56:78", "ISBN 978-3-16-148410-0", "x 0.5 y",
    "score 3-2", "page 12-13", "BG123456C",
]


@pytest.mark.parametrize("raw", NEGATIVES)
def test_look_alikes_unchanged(raw):
    assert clean_text(raw) == raw


SWITCHED = [  # (flag, text, masked by the full masker)
    ("mask_cards", "4111 1111 1111 1111"),
    ("mask_ibans", "DE89370400440532013000"),
    ("mask_ssns", "123-45-6789"),
    ("mask_ninos", "AB123456C"),
    ("mask_ips", "192.168.1.10"),
    ("mask_macs", "00:1A:2B:3C:4D:5E"),
    ("mask_phones", "020 7946 0958"),
    ("mask_emails", "josé@bücher.de"),
    ("mask_users", "u/some_name"),
]


@pytest.mark.parametrize("flag, value", SWITCHED)
def test_switch_off_leaves_that_kind(flag, value):
    raw = f"x {value} y"
    assert clean_text(raw) != raw
    assert clean_text(raw, params={**P, flag: False}) == raw  # not masked as another kind either


def test_new_switches_default_on_and_old_names_kept():
    cfg = CleanConfig()
    for flag, _ in KINDS.values():
        assert getattr(cfg, flag) is True
    for old in ("mask_urls", "mask_emails", "mask_phones", "mask_users"):
        assert old in cfg.model_dump()


def test_counts_per_kind():
    df = pd.DataFrame({
        "t": ["card 4111 1111 1111 1111 and 5500000000000004, ssn 123-45-6789",
              "call 555-123-4567 555-987-6543 or mail a@b.com",
              "ip 8.8.8.8 and 4111 1111 1111 1112 and [CARD] already there",
              None, "nothing here 2019-2020"],
        "y": [0, 1, 0, 1, 1],
    })
    out = clean_batch(df, text_col="t", label_col="y", label_map={}, params=P)
    masked = out.attrs["pii_masked"]
    assert masked == {"email": 1, "url": 0, "user": 0, "iban": 0, "card": 2, "ssn": 1, "nino": 0,
                      "mac": 0, "ip": 1, "phone": 2}
    off = clean_batch(df, text_col="t", label_col="y", label_map={}, params={**P, "mask_cards": False}).attrs
    assert "card" not in off["pii_masked"] and off["pii_masked"]["phone"] == 2
    assert merge_pii_counts([masked, {"card": 3, "mac": 1}])["card"] == 5


def test_reject_reasons_are_bare_codes():
    df = pd.DataFrame({"t": ["fine", "x" * 50, "fine"], "y": [1, 1, "secret label text"]})
    out = clean_batch(df, text_col="t", label_col="y", label_map={}, params={**P, "max_chars": 10})
    reasons = [r for r in out["reject_reason"] if not pd.isna(r)]
    assert reasons == ["text_too_long", "unknown_label"]
    assert set(reasons) <= set(REJECT_REASONS) and all(":" not in r for r in REJECT_REASONS)
