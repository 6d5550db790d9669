"""Edits of LLM spans before re-export: enrichment attributes, content scrubbed or stripped.

Works on a copy of the request (the caller's job) and touches only spans recognised as LLM calls;
other spans pass through unchanged. Content is any attribute in ``CONTENT_KEYS`` /
``CONTENT_PREFIXES`` and every attribute of a ``gen_ai`` content event. With ``strip_content``
content attributes are removed; otherwise, when redaction applies to spans, every string inside
them is scrubbed, and a scrubber failure replaces the whole value by ``[REDACTED:scrubber_error]``
(fail closed). User-id attributes are kept, hashed or dropped per ``processors.redaction.user_id``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from otlp_enricher.model import LLMCall
from otlp_enricher.processor.redaction import RedactionFailed, Redactor
from otlp_enricher.semconv.keys import CONTENT_KEYS, CONTENT_PREFIXES, USER_ID

PREFIX = "otlp_enricher."
FAILED_MARKER = "[REDACTED:scrubber_error]"
CONTENT_EVENT_PREFIXES = ("gen_ai.content.", "gen_ai.user.", "gen_ai.system.", "gen_ai.assistant.", "gen_ai.tool.")
CONTENT_EVENTS = frozenset({"gen_ai.choice", "gen_ai.client.inference.operation.details"})
_USER_KEYS = frozenset(USER_ID)


def is_content_key(key: str) -> bool:
    """Whether attribute ``key`` carries prompt or completion content."""
    return key in CONTENT_KEYS or key.startswith(CONTENT_PREFIXES)


def _is_content_event(name: str) -> bool:
    return name in CONTENT_EVENTS or name.startswith(CONTENT_EVENT_PREFIXES)


class SpanEditor:
    """Applies the enrichment and the content policy to the LLM spans of a request copy."""

    def __init__(self, redactor: Redactor, strip_content: bool) -> None:
        self._redactor = redactor
        self._strip = strip_content
        self._scrub = redactor.spans and not strip_content
        self._user_mode = redactor.settings.user_id if redactor.settings.enabled else "keep"

    def edit(self, request: Any, calls: Sequence[LLMCall], counts: Counter[str]) -> int:
        """Edit the spans of ``calls`` found in ``request``; returns how many values failed to scrub."""
        index = {(call.trace_id, call.span_id): call for call in calls}
        failed = 0
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    call = index.get((span.trace_id, span.span_id))
                    if call is not None:
                        failed += self._content(span.attributes, False, counts)
                        for event in span.events:
                            failed += self._content(event.attributes, _is_content_event(event.name), counts)
                        enrich(span, call, self._strip)
        return failed

    def _content(self, attributes: Any, all_content: bool, counts: Counter[str]) -> int:
        failed = 0
        for index in range(len(attributes) - 1, -1, -1):
            kv = attributes[index]
            if kv.key in _USER_KEYS and self._user_mode != "keep":
                user = self._redactor.user_id(kv.value.string_value) if kv.value.string_value else None
                if user is None:
                    del attributes[index]
                else:
                    kv.value.string_value = user
            elif all_content or is_content_key(kv.key):
                if self._strip:
                    del attributes[index]
                elif self._scrub:
                    try:
                        self._scrub_value(kv.value, counts)
                    except RedactionFailed:
                        kv.value.Clear()
                        kv.value.string_value = FAILED_MARKER
                        failed += 1
        return failed

    def _scrub_value(self, value: Any, counts: Counter[str]) -> None:
        kind = value.WhichOneof("value")
        if kind == "string_value":
            value.string_value = self._redactor.scrub(value.string_value, counts)
        elif kind == "array_value":
            for item in value.array_value.values:
                self._scrub_value(item, counts)
        elif kind == "kvlist_value":
            for item in value.kvlist_value.values:
                self._scrub_value(item.value, counts)


def enrich(span: Any, call: LLMCall, stripped: bool) -> None:
    """Add the ``otlp_enricher.*`` attributes of ``call`` to ``span``."""
    add = span.attributes.add
    add(key=PREFIX + "provider").value.string_value = call.provider
    add(key=PREFIX + "model").value.string_value = call.model
    add(key=PREFIX + "cost_source").value.string_value = call.cost_source
    add(key=PREFIX + "unpriced").value.bool_value = call.cost_source == "unpriced"
    if call.cost_usd is not None:
        add(key=PREFIX + "cost_usd").value.double_value = call.cost_usd
    if call.priced_model:
        add(key=PREFIX + "priced_model").value.string_value = call.priced_model
    if call.error_reason:
        add(key=PREFIX + "error_reason").value.string_value = call.error_reason
    for name, good in call.slo_outcomes.items():
        add(key=f"{PREFIX}slo.{name}").value.string_value = "good" if good else "bad"
    if stripped:
        add(key=PREFIX + "content_stripped").value.bool_value = True
