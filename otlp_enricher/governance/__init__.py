"""Governance as code: Prometheus rules and a Grafana dashboard generated from the config ``serve`` runs.

``otlp-enricher rules`` and ``otlp-enricher dashboard`` print them; ``deploy/`` holds the output for
the shipped config. Budgets (``processors.genai.budgets``) and alert tuning
(``processors.genai.alerts``) are declared in :mod:`.settings`.
"""
