"""Checks on a raw HTTP request before it is parsed, and what the service may show of itself.

The service reads bodies only up to a size cap and refuses, before any JSON parser runs,
bodies that are not UTF-8, nest deeper than a bound or hold a number too long to convert
(CPython refuses ints over 4,300 digits with a ``ValueError`` that web frameworks turn into a
500). Each refusal is a ``Refusal``: an HTTP status, a reason code for the rejects counter, and
a message that names the limit, never the content. Bearer tokens are compared in constant
time against a SHA-256 digest, so the deployment's arguments (visible in Ray's dashboard) hold
no secret. Pure functions: no I/O, no Ray.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Any

MAX_NUMBER_CHARS = 64  # longer runs of digits in JSON numbers are refused
_JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class Refusal:
    status: int
    reason: str
    message: str


def check_content_type(content_type: str | None) -> Refusal | None:
    """Only JSON bodies: ``application/json`` or a ``+json`` type, any parameters."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media in _JSON_TYPES or media.endswith("+json"):
        return None
    shown = media[:40] or "none"
    return Refusal(415, "unsupported_media_type",
                   f"request body must be JSON (Content-Type: application/json); found {shown}")


def check_declared_length(content_length: str | None, *, max_bytes: int) -> Refusal | None:
    """Refuse from the ``Content-Length`` header alone, before reading anything."""
    if content_length is None:
        return None
    try:
        n = int(content_length)
    except ValueError:
        return Refusal(400, "bad_content_length", "Content-Length is not a number")
    if n > max_bytes:
        return too_large(max_bytes)
    return None


def too_large(max_bytes: int) -> Refusal:
    return Refusal(413, "body_too_large", f"request body larger than {max_bytes} bytes")


def check_body(body: bytes, *, max_depth: int) -> Refusal | None:
    """UTF-8, nesting at most ``max_depth`` and no number longer than MAX_NUMBER_CHARS.

    A linear scan that tracks strings (with escapes), so brackets and digits inside strings do
    not count; what it lets through is still parsed (and validated) by the framework.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return Refusal(400, "not_utf8", f"request body is not valid UTF-8 (byte {e.start})")
    depth = 0
    in_str = escaped = False
    run = 0
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
            continue
        if ch.isdigit():
            run += 1
            if run > MAX_NUMBER_CHARS:
                return Refusal(400, "number_too_long", f"a number in the body has more than "
                                                       f"{MAX_NUMBER_CHARS} digits")
            continue
        run = 0
        if ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > max_depth:
                return Refusal(400, "too_deep", f"request body nests deeper than {max_depth} levels")
        elif ch in "]}":
            depth -= 1
    return None


def check_texts(texts: list[str], *, field: str, max_texts: int, max_chars: int,
                expect: int | None = None) -> Refusal | None:
    """A request's texts: at least one, at most ``max_texts``, each at most ``max_chars``
    characters; with ``expect`` (a second text per first text, ``text_pairs``) exactly that many.
    Messages name the field and the position (``texts[3]``), never the text."""
    if expect is not None and len(texts) != expect:
        return Refusal(422, f"{field}_length", f"{field}: expected one entry per text ({expect}); "
                                               f"found {len(texts)}")
    if len(texts) == 0:
        return Refusal(422, "empty", f"{field}: expected at least 1 text; found an empty list")
    if len(texts) > max_texts:
        return Refusal(413, "too_many_texts", f"{field}: at most {max_texts} texts per request; "
                                              f"found {len(texts)}")
    for i, t in enumerate(texts):
        if len(t) > max_chars:
            where = f"{field}[{i}]" if field.endswith("s") else field  # a list, or one text
            return Refusal(413, "text_too_long", f"{where}: at most {max_chars} characters per text; "
                                                 f"found {len(t)}")
    return None


def token_digest(token: str) -> str:
    """The SHA-256 hex digest a deployment is given instead of its token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_bearer(authorization: str | None, *, digest: str) -> Refusal | None:
    """``Authorization: Bearer <token>`` whose digest equals ``digest`` (constant-time compare)."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return Refusal(401, "unauthorized", "missing bearer token (Authorization: Bearer <token>)")
    if not hmac.compare_digest(token_digest(token.strip()), digest):
        return Refusal(401, "unauthorized", "invalid bearer token")
    return None


_ABS_PATH = re.compile(r"^(?:/|~/|[A-Za-z]:[\\/]|file:|s3://|gs://|hdfs://)")


def public_card(card: Any) -> Any:
    """A model card fit to show to any client: absolute paths and URIs become their last path
    component, data URIs (embedded plots) are dropped, everything else is kept as is."""
    if isinstance(card, dict):
        return {k: public_card(v) for k, v in card.items()}
    if isinstance(card, list):
        return [public_card(v) for v in card]
    if isinstance(card, str):
        if card.startswith("data:"):
            return "(data URI omitted)"
        if _ABS_PATH.match(card):
            return card.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return card
