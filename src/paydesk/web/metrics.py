"""``GET /metrics``: the Prometheus exposition, behind a bearer token.

With ``PAYDESK_METRICS_TOKEN`` set, a scrape must send ``Authorization: Bearer
<token>`` (401 otherwise). Without a token, ``/metrics`` is open in development
(the demo, a laptop) and does not exist elsewhere (404): a staging or production
deployment never publishes its business figures by accident. The route sits on
the API port (one port to secure and probe); Prometheus scrapes it through the
Service, which the NetworkPolicy opens to the ``monitoring`` namespace.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from paydesk.analytics.prometheus import PaydeskMetrics
from paydesk.errors import AuthenticationRequired, NotFound
from paydesk.web.api.deps import SettingsDep

router = APIRouter(include_in_schema=False)


@router.get("/metrics")
def metrics(request: Request, settings: SettingsDep) -> Response:
    """Every Paydesk metric in the Prometheus text format."""
    token = settings.metrics_token
    if token is None:
        if settings.env != "development":
            raise NotFound("Not Found", code="not_found")
    else:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = token.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
            raise AuthenticationRequired(
                "A valid metrics bearer token is required.", code="authentication_required"
            )
    registry: PaydeskMetrics = request.app.state.metrics
    return Response(registry.exposition(), media_type=CONTENT_TYPE_LATEST)
