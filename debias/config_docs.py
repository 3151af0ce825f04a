"""The config described from its pydantic models: every key with its default (YAML), the JSON
schema, a Markdown reference (``docs/CONFIG.md``), and "did you mean" for unknown keys. Nothing
here is written by hand, so it cannot drift from what :func:`debias.config.load_config` accepts.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Sequence
from typing import Any

import yaml
from pydantic import BaseModel

from debias.config import PipelineConfig

__all__ = ["defaults_yaml", "reference_markdown", "schema_json", "suggest_key"]

REQUIRED = "<required>"


def defaults_yaml() -> str:
    """Every key with its default value; ``data.path`` (the one required key) marked."""
    cfg = PipelineConfig.model_validate({"data": {"path": REQUIRED}})
    body = yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True, width=100)
    return ("# debias config: every key with its default (`debias config --defaults`).\n"
            "# Only data.path is required; see docs/CONFIG.md for what each key means.\n" + body)


def schema_json() -> str:
    return json.dumps(PipelineConfig.model_json_schema(), indent=2) + "\n"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (``X``, ``X | None``, ``list[X]``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out += _models_in(arg)
    return out


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "null"
    if isinstance(annotation, type) and not typing.get_args(annotation):
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " \\| ".join(repr(a) if not isinstance(a, str) else a for a in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]"
    return str(annotation).replace("typing.", "")


def _default(field: Any) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        try:
            v = field.default_factory()
        except TypeError:
            return "(computed)"
    else:
        v = field.default
    if isinstance(v, BaseModel):
        return "(section)"
    if isinstance(v, list) and v and isinstance(v[0], BaseModel):
        return f"{len(v)} entries (see `--defaults`)"
    return f"`{json.dumps(v, default=str)}`"


def _cell(text: str | None) -> str:
    return (text or "").replace("|", "\\|").replace("\n", " ")


def reference_markdown() -> str:
    """One table per section (and per nested list item, e.g. ``evaluate.suites[]``)."""
    lines = ["# Config reference", "",
             "Generated from the pydantic models by `debias config --reference > docs/CONFIG.md`; "
             "`debias config --defaults` prints every default as YAML and `--schema` the JSON schema. "
             "Unknown keys are an error that names the nearest known key.", ""]
    queue: list[tuple[str, type[BaseModel]]] = [("", PipelineConfig)]
    seen: set[str] = set()
    while queue:
        prefix, model = queue.pop(0)
        if prefix in seen:
            continue
        seen.add(prefix)
        lines += [f"## `{prefix}`" if prefix else "## top level", ""]
        if model.__doc__ and model is not PipelineConfig and not model.__doc__.startswith(model.__name__ + "("):
            lines += [_cell(model.__doc__.strip().split("\n\n")[0]), ""]
        lines += ["| key | type | default | description |", "|---|---|---|---|"]
        for name, field in model.model_fields.items():
            key = f"{prefix}.{name}" if prefix else name
            lines.append(f"| `{key}` | {_type_name(field.annotation)} | {_default(field)} | {_cell(field.description)} |")
            for sub in _models_in(field.annotation):
                many = typing.get_origin(field.annotation) in (list, dict) or any(
                    typing.get_origin(a) in (list, dict) for a in typing.get_args(field.annotation))
                queue.append((key + ("[]" if many else ""), sub))
        lines.append("")
    return "\n".join(lines)


def suggest_key(loc: Sequence[Any]) -> str | None:
    """For an unknown key at ``loc`` (pydantic's error location), the nearest known key there."""
    model: Any = PipelineConfig
    for part in loc[:-1]:
        if isinstance(part, int) or model is None:
            continue
        field = model.model_fields.get(str(part))
        if field is None:
            return None
        found = _models_in(field.annotation)
        model = found[0] if found else None
    if model is None:
        return None
    near = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return near[0] if near else None
