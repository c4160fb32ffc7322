"""Tests of deploy/monitoring: alert rules, Prometheus end to end, dashboards."""
