"""Connectors: enriched LLM calls → what each output carries.

``metrics`` and ``genai_metrics`` (the ``llm_*`` and OTel ``gen_ai.*`` Prometheus series),
``promptlog`` (the redacted JSON prompt-log line, for Loki and the local file), ``spans`` (the
enriched, redacted span bytes, for Tempo and the local file), ``report`` (the replay report).
Exporters only deliver what these produce.
"""
