"""The offline Stripe sandbox: a stateful stand-in for the Stripe API (version
2026-10-28.endive) that the official SDK talks to over HTTP.

A development and test tool only: production code never imports it. Start it with
``paydesk sandbox`` or, in tests, ``paydesk.sandbox.server.running_sandbox()``; see
FRAMEWORK.md in this directory for how resources are written.
"""
