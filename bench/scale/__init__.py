"""Metrics and list pages at N subscriptions (``python -m bench.scale``)."""
