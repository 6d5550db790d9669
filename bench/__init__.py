"""The side-by-side benchmark: otlp-enricher and the real OpenTelemetry Collector on the same load.

Run ``python -m bench.compare`` (``--quick`` for a smoke run); see ``bench/compare.py``.
"""
