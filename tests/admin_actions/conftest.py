"""The Admin API client of the web tests, for driving actions over real HTTP."""

from tests.web.api.conftest import api

__all__ = ["api"]
