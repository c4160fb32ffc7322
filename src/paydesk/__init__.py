"""Paydesk."""
