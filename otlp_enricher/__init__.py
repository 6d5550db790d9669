"""otlp-enricher: an OTLP sidecar that turns LLM spans into cost, latency and SLO signals.

The package is laid out as the pipeline it runs (see ``service.py`` for the wiring):
``receiver`` → ``semconv`` (recognise) → ``processor`` (derive) → ``connector`` (metrics, prompt logs)
→ ``exporter`` (Loki, Tempo, local files).
"""

__version__ = "0.1.0"
