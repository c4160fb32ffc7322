"""Benchmarks: ``make bench`` runs them all; see bench/README.md."""
