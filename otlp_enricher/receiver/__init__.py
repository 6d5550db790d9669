"""OTLP receivers (gRPC and HTTP): decode, hand to the pipeline, answer per the OTLP spec.

Answers follow the OTLP failure table (``docs/reference/protocols.md`` §1–2): undecodable body →
INVALID_ARGUMENT / 400 (permanent); exporters full or shutting down → UNAVAILABLE with RetryInfo /
503 with Retry-After (retryable); spans whose LLM data is unusable → ``partial_success``. Never
RESOURCE_EXHAUSTED without RetryInfo, which the Collector treats as permanent and drops.
"""
