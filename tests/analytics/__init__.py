"""Tests of paydesk.analytics."""
