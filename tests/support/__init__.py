"""Helpers shared by the test suite (real servers, real databases)."""
