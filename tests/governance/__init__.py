"""Tests of the rule and dashboard generators (otlp_enricher.governance)."""
