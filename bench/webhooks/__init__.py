"""Webhook ingest and processing benchmark (see bench/README.md)."""
