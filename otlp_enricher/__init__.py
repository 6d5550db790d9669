"""otlp-enricher: an OTLP sidecar that turns LLM spans into cost, latency and SLO signals.

The package is laid out as the pipeline it runs (see ``service.py`` for the wiring):
``receiver`` → ``semconv`` (recognise) → ``processor`` (derive) → ``connector`` (metrics, prompt logs)
→ ``exporter`` (Loki, Tempo, local files).
"""

from importlib import metadata

try:
    # The version is written once, in pyproject.toml; the installed metadata carries it here.
    __version__ = metadata.version("otlp-enricher")
except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
