"""Exporters: where spans and prompt logs leave the process (Loki, Tempo, or local files)."""
