"""Strict request bodies: one base model for every API body, so that both databases see the same input.

Pydantic's lax mode turns `true` into 1 and 1 into `true`, accepts any integer a column cannot hold and any text,
however invisible. `Body` refuses, before field validation: a boolean where a number is expected and a number
where a boolean is; integers outside what a column holds (±2^31 - 1, ±10^15 for `_cents`) where the field sets
no bound of its own; and text without a single visible character where a name, a title or non-empty text is
required. NUL characters are refused for every request in `core.guards`.
"""

from __future__ import annotations

import types
import unicodedata
from typing import Annotated, Any, Union, get_args, get_origin

from annotated_types import MinLen
from pydantic import BaseModel, ConfigDict, model_validator
from pydantic.fields import FieldInfo

INT_LIMIT = 2**31 - 1
CENTS_LIMIT = 10**15
NAMED_TEXT = ("name", "title")


def visible(text: str) -> bool:
    """At least one character that is neither whitespace nor a format / control character (e.g. zero-width)."""
    return any(not ch.isspace() and unicodedata.category(ch)[0] not in ("C", "Z") for ch in text)


def _problem(value: Any, annotation: Any, limit: int) -> str | None:
    origin = get_origin(annotation)
    if origin is Annotated:
        return _problem(value, get_args(annotation)[0], limit)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(annotation) if a is not type(None)]
        if value is None:
            return None
        if all(_problem(value, a, limit) for a in options):
            return next(p for p in (_problem(value, a, limit) for a in options) if p)
        return None
    if annotation is bool:
        return None if isinstance(value, bool) else "expected true or false"
    if annotation is float and isinstance(value, bool):
        return "expected a number, not true/false"
    if annotation is int:
        if isinstance(value, bool):
            return "expected a number, not true/false"
        if isinstance(value, int) and not -limit <= value <= limit:
            return f"must be between {-limit} and {limit}"
        return None
    if origin in (list, tuple, set, frozenset) and isinstance(value, list):
        args = get_args(annotation) or (Any,)
        for item in value:
            problem = _problem(item, args[0], limit)
            if problem:
                return problem
        return None
    if origin is dict and isinstance(value, dict):
        args = get_args(annotation) or (Any, Any)
        for item in value.values():
            problem = _problem(item, args[1], limit)
            if problem:
                return problem
    return None


def _has_own_bounds(field: FieldInfo) -> bool:
    return any(hasattr(m, attr) for m in field.metadata for attr in ("ge", "gt", "le", "lt"))


def _requires_text(name: str, field: FieldInfo) -> bool:
    if name in NAMED_TEXT or name.endswith(("_name", "_title")):
        return True
    return any(isinstance(m, MinLen) and m.min_length >= 1 for m in field.metadata)


class Body(BaseModel):
    """Base of every request body (see the module docstring)."""

    model_config = ConfigDict(extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _strict(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for name, field in cls.model_fields.items():
            key = field.alias or name
            if key not in data:
                continue
            value = data[key]
            limit = CENTS_LIMIT if name.endswith("_cents") else INT_LIMIT
            problem = _problem(value, field.annotation, limit if not _has_own_bounds(field) else 2**63)
            if problem is None and isinstance(value, str) and value and _requires_text(name, field) \
                    and not visible(value):
                problem = "must contain a visible character"
            if problem:
                raise ValueError(f"{name}: {problem}")
        return data
