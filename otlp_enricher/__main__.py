"""``python -m otlp_enricher`` runs the CLI."""

from otlp_enricher.cli import main

raise SystemExit(main())
