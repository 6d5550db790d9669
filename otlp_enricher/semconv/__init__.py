"""Attribute vocabularies → one normalised :class:`~otlp_enricher.model.LLMCall`.

``keys.py`` holds the data tables (which attribute names mean what in OTel ``gen_ai.*`` old and new,
OpenInference, OpenLLMetry, OpenLIT, Vercel AI SDK); ``candidates.py`` says which spans and values
the native scanner hands over; ``extract.py`` applies the tables to a span; ``messages.py``
normalises prompt and completion content; ``providers.py`` normalises provider names.
"""

from otlp_enricher.semconv.extract import CallExtractor, UsageSemantics

__all__ = ["CallExtractor", "UsageSemantics"]
