"""Messages on the bus are JSON; an optional schema (any callable, e.g. a pydantic model's model_validate) checks both ends."""
from __future__ import annotations

import json
from typing import Any, Callable, Optional, TypeVar
from urllib.parse import urlparse

from .._protocol import _jsonable
from ..errors import MessageValidationError

T = TypeVar("T")

Schema = Callable[[Any], T]
"""Validates (and may convert) a decoded message: a pydantic model's model_validate, a dataclass, any callable."""


def _check(value: Any, schema: Optional[Schema[T]], where: str) -> T:
    if schema is None:
        return value
    try:
        return schema(value)
    except Exception as err:
        raise MessageValidationError(f"{where}: message does not match its schema: {err}") from err


def _encode(value: Any, schema: Optional[Schema[Any]], where: str) -> str:
    checked = _check(value, schema, where)
    return json.dumps(checked, separators=(",", ":"), default=_jsonable)


def _decode(raw: str | bytes, schema: Optional[Schema[T]], where: str) -> T:
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    try:
        value = json.loads(text)
    except ValueError as err:
        raise MessageValidationError(f"{where}: message is not JSON: {text[:80]}") from err
    return _check(value, schema, where)


def _endpoint(url: str, default_port: int) -> str:
    u = urlparse(url)
    return f"{u.hostname}:{u.port or default_port}"
