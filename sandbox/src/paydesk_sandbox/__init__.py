"""The offline Stripe sandbox: a stateful stand-in for the Stripe API (version
2026-10-28.endive) that the official SDK talks to over HTTP.

A development and test tool only: production code never imports it. Start it with
``paydesk-sandbox`` (or ``paydesk sandbox``) or, in tests, with
``paydesk_sandbox.server.running_sandbox()``; see sandbox/FRAMEWORK.md for how
resources are written.
"""
