"""debias.serving.requests: pre-parse body checks, bearer tokens, and the public model card."""

import json

import pytest

from debias.serving.requests import (
    MAX_NUMBER_CHARS,
    check_bearer,
    check_body,
    check_content_type,
    check_declared_length,
    public_card,
    token_digest,
)


@pytest.mark.parametrize("ct", ["application/json", "application/json; charset=utf-8",
                                "Application/JSON", "application/vnd.api+json"])
def test_json_content_types_pass(ct):
    assert check_content_type(ct) is None


@pytest.mark.parametrize("ct", [None, "", "text/plain", "application/x-www-form-urlencoded",
                                "multipart/form-data; boundary=x"])
def test_other_content_types_are_415_without_echoing_parameters(ct):
    r = check_content_type(ct)
    assert r is not None and r.status == 415 and r.reason == "unsupported_media_type"
    assert "boundary" not in r.message


def test_declared_length():
    assert check_declared_length(None, max_bytes=10) is None
    assert check_declared_length("10", max_bytes=10) is None
    assert check_declared_length("11", max_bytes=10).status == 413
    assert check_declared_length("ten", max_bytes=10).status == 400


def test_body_checks_pass_ordinary_json_and_count_only_structure_outside_strings():
    ok = json.dumps({"texts": ["[[[[{{{{ 12345678901234567890123456789012345678901234567890123456789012345678 ]]",
                               'quote \\" and \\\\ escapes', "ünïcödé"]}).encode()
    assert check_body(ok, max_depth=3) is None
    assert check_body(b'{"a": [1.5e10, -2, 3.14159265358979]}', max_depth=2) is None


@pytest.mark.parametrize("body,reason", [
    (b'{"texts": ["caf\xe9"]}', "not_utf8"),
    (b"[" * 40 + b"]" * 40, "too_deep"),
    (b'{"texts": [' + b"7" * (MAX_NUMBER_CHARS + 1) + b"]}", "number_too_long"),
    (b'{"n": ' + b"9" * 5000 + b"}", "number_too_long"),
])
def test_bad_bodies_get_a_reason_and_a_message_without_content(body, reason):
    r = check_body(body, max_depth=32)
    assert r is not None and r.status == 400 and r.reason == reason
    assert "caf" not in r.message and "7777" not in r.message


def test_depth_at_the_limit_passes():
    assert check_body(b"[" * 32 + b"]" * 32, max_depth=32) is None
    assert check_body(b"[" * 33 + b"]" * 33, max_depth=32).reason == "too_deep"


def test_bearer_tokens():
    digest = token_digest("s3cret-token")
    assert check_bearer("Bearer s3cret-token", digest=digest) is None
    assert check_bearer("bearer s3cret-token", digest=digest) is None
    for header in (None, "", "Basic abc", "Bearer ", "Bearer wrong"):
        r = check_bearer(header, digest=digest)
        assert r is not None and r.status == 401 and "s3cret" not in r.message
    assert digest != "s3cret-token" and len(digest) == 64


def test_public_card_drops_paths_and_data_uris():
    card = {"version": "v1", "source": "/home/alice/runs/demo/train/model",
            "data": {"path": "s3://bucket/corpus/part-0.parquet", "rows": 10},
            "plots": ["data:image/png;base64,AAAA"], "windows": "C:\\Users\\bob\\model\\",
            "note": "trained on /data? no: a sentence, kept", "auc": 0.91}
    out = public_card(card)
    assert out["version"] == "v1" and out["auc"] == 0.91 and out["data"]["rows"] == 10
    assert out["source"] == "model" and out["data"]["path"] == "part-0.parquet"
    assert out["windows"] == "model" and out["plots"] == ["(data URI omitted)"]
    assert out["note"] == card["note"]
    assert "/home" not in json.dumps(out) and "base64" not in json.dumps(out)


def test_request_texts_are_checked_with_the_field_and_position_named():
    from debias.serving.requests import check_texts

    kw = {"max_texts": 3, "max_chars": 5}
    assert check_texts(["a", "bb"], field="texts", **kw) is None
    assert check_texts(["a"], field="text_pairs", expect=1, **kw) is None
    r = check_texts(["a"], field="text_pairs", expect=2, **kw)
    assert (r.status, r.reason) == (422, "text_pairs_length") and "expected one entry per text (2); found 1" in r.message
    r = check_texts([], field="texts", **kw)
    assert (r.status, r.reason) == (422, "empty")
    r = check_texts(["a"] * 4, field="texts", **kw)
    assert (r.status, r.reason) == (413, "too_many_texts") and "at most 3 texts" in r.message
    r = check_texts(["a", "secret text"], field="text_pairs", expect=2, **kw)
    assert r.message.startswith("text_pairs[1]: at most 5 characters") and "secret" not in r.message
    assert check_texts(["secret text"], field="text_pair", **kw).message.startswith("text_pair: at most")
