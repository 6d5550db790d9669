"""The sidecar's own telemetry: metric declarations, log setup, and the /metrics + health server."""
