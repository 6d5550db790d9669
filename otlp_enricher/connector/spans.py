"""Edits of LLM spans before re-export: enrichment attributes, content scrubbed or stripped.

The edits are written into the request's own bytes by the native core
(:class:`~otlp_enricher.dataplane.SpanWriter`); only spans recognised as LLM calls change, every
other byte is copied. Content is any attribute in ``CONTENT_KEYS`` / ``CONTENT_PREFIXES`` and
every attribute of a content event (``semconv/keys.py``). With ``strip_content`` content
attributes are removed; otherwise, when redaction applies to spans, every string inside them is
scrubbed, and a scrubber failure replaces the whole value by ``[REDACTED:scrubber_error]`` (fail
closed). User-id attributes are kept, hashed or dropped per ``processors.redaction.user_id``.
The same edits serve Tempo and the local span file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from otlp_enricher.dataplane import AttributeValue, SpanEdit, SpanWriter
from otlp_enricher.model import LLMCall
from otlp_enricher.processor.redaction import Redactor
from otlp_enricher.semconv.keys import USER_ID

PREFIX = "otlp_enricher."


class SpanEditor:
    """Applies the enrichment and the content policy to the LLM spans of a request."""

    def __init__(self, redactor: Redactor, strip_content: bool) -> None:
        self._redactor = redactor
        self._strip = strip_content
        content = "strip" if strip_content else "scrub" if redactor.spans else "keep"
        self._writer = SpanWriter(content, redactor.native if content == "scrub" else None)
        self._rewrite_users = redactor.settings.enabled and redactor.settings.user_id != "keep"

    def edit(self, request: bytes, calls: Sequence[LLMCall], counts: Counter[str]) -> tuple[bytes, int]:
        """``request`` with the spans of ``calls`` edited; and how many values failed to scrub."""
        strip = self._strip
        edits: dict[int, SpanEdit] = {call.ordinal: (self._users(call), enrichment(call, strip)) for call in calls}
        payload, found, failed = self._writer.write(request, edits)
        counts.update(found)
        return payload, failed

    def _users(self, call: LLMCall) -> dict[str, AttributeValue | None]:
        if not self._rewrite_users or call.attributes is None:
            return {}
        replace: dict[str, AttributeValue | None] = {}
        for key in USER_ID:
            value = call.attributes.get(key)
            if isinstance(value, str):
                replace[key] = self._redactor.user_id(value) if value else None
        return replace


def enrichment(call: LLMCall, stripped: bool) -> list[tuple[str, AttributeValue]]:
    """The ``otlp_enricher.*`` attributes of ``call``."""
    added: list[tuple[str, AttributeValue]] = [
        (PREFIX + "provider", call.provider),
        (PREFIX + "model", call.model),
        (PREFIX + "cost_source", call.cost_source),
        (PREFIX + "unpriced", call.cost_source == "unpriced"),
    ]
    if call.cost_usd is not None:
        added.append((PREFIX + "cost_usd", float(call.cost_usd)))
    if call.priced_model:
        added.append((PREFIX + "priced_model", call.priced_model))
    if call.error_reason:
        added.append((PREFIX + "error_reason", call.error_reason))
    for name, good in call.slo_outcomes.items():
        added.append((f"{PREFIX}slo.{name}", "good" if good else "bad"))
    if stripped:
        added.append((PREFIX + "content_stripped", True))
    return added
