"""Email to customers: the pay-link notice of a renewal that needs them, via an outbox."""
