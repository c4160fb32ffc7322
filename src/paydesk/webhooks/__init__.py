"""The webhook pipeline: receive (verify + store), process (claim + apply), operate.

- ``receive``: parse a verified delivery and store it once, durably, in
  ``stripe_events`` (group commit: concurrent deliveries share one transaction).
- ``process``: the worker — claim stored events, apply them to the mirror through
  ``handlers``, record status, retry with backoff, park after a limit.
- ``operations``: list, show, replay and backfill (from Stripe's ``/v1/events``).
"""
