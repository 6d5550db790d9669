"""LiteLLM's ``metadata.usage_object``: the only place its spans carry cache and reasoning counts.

LiteLLM's OpenTelemetry integration writes each ``metadata`` entry as a string attribute, so the
usage object arrives serialised: as a Python ``str(dict)`` of OpenAI-shaped usage (``None``, nested
``prompt_tokens_details``), as JSON, or as a pydantic repr (``Usage(completion_tokens=50, …)``).
It is read with ``orjson``, then ``ast.literal_eval`` (literals only — never ``eval``), then as
``name=123`` pairs; anything else yields no counts and the call is still counted.
"""

from __future__ import annotations

import ast
import re
from typing import Any

import orjson

# A serialised usage object larger than this is not parsed (ast.literal_eval is not bounded).
_MAX_USAGE_OBJECT_CHARS = 16_384
_REPR_COUNT = re.compile(r"\b([a-z_]+)=(\d+)\b")


def litellm_usage(found: tuple[str, Any] | None) -> dict[str, Any]:
    """LiteLLM's ``metadata.usage_object``: JSON, a Python ``str(dict)`` (read with
    ``ast.literal_eval``, which evaluates literals only), or a pydantic repr (``name=123`` pairs)."""
    if found is None:
        return {}
    value = found[1]
    if isinstance(value, dict):
        return value
    if not isinstance(value, str) or len(value) > _MAX_USAGE_OBJECT_CHARS:
        return {}
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            parsed = {name: int(number) for name, number in _REPR_COUNT.findall(value)}
    return parsed if isinstance(parsed, dict) else {}


def usage_path(usage: dict[str, Any], paths: tuple[tuple[str, ...], ...]) -> tuple[str, Any] | None:
    """The first count found at one of ``paths`` in a usage object (flat repr pairs match by leaf)."""
    for path in paths:
        node: Any = usage
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None and path[-1] in usage and len(path) > 1:
            node = usage[path[-1]]
        if isinstance(node, int | float) and not isinstance(node, bool) and node > 0:
            return "metadata.usage_object." + ".".join(path), node
    return None
