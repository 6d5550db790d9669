"""Connectors: LLM call records → Prometheus metrics, prompt-log records and replay reports."""
