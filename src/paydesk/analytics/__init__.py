"""Business metrics from the mirror and the Prometheus exporter (no HTTP here)."""
