"""Console alerts (from Prometheus) and settings (with the doctor's checks)."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response

from paydesk.auth.roles import Permission
from paydesk.web.api.deps import SessionDep
from paydesk.web.console.common import KEY_ROTATION_DAYS, PrincipalDep, need, render, settings_of
from paydesk.webhooks.operations import rejection_counts

router = APIRouter()


@router.get("/alerts")
def alerts(request: Request, principal: PrincipalDep) -> Response:
    settings = settings_of(request)
    firing: list[dict[str, str]] = []
    error = None
    if settings.prometheus_url:
        import httpx

        try:
            response = httpx.get(f"{settings.prometheus_url}/api/v1/alerts", timeout=3)
            response.raise_for_status()
            for alert in response.json().get("data", {}).get("alerts", []):
                if alert.get("state") == "firing":
                    labels = alert.get("labels", {})
                    annotations = alert.get("annotations", {})
                    firing.append(
                        {
                            "name": str(labels.get("alertname", "?")),
                            "severity": str(labels.get("severity", "")),
                            "summary": str(annotations.get("summary", "")),
                            "since": str(alert.get("activeAt", "")),
                        }
                    )
        except (httpx.HTTPError, ValueError) as exc:
            error = f"Prometheus did not answer: {type(exc).__name__}"
    return render(
        request,
        "alerts.html",
        {"configured": settings.prometheus_url is not None, "firing": firing, "error": error},
    )


@router.get("/settings")
def settings_page(request: Request, session: SessionDep, principal: PrincipalDep) -> Response:
    need(request, principal, Permission.SETTINGS_READ)
    settings = settings_of(request)
    rejections = rejection_counts(session, hours=24, limit=100)
    # The doctor's database check opens its own connection: release ours first
    # (SQLite transactions hold the write lock).
    session.commit()
    from paydesk.doctor import run_checks
    from paydesk.stripe_gateway import build_gateway

    checks = run_checks(settings, build_gateway)
    key_age = None
    if settings.stripe_key_created is not None:
        key_age = (date.today() - settings.stripe_key_created).days
    return render(
        request,
        "settings.html",
        {
            "settings": settings,
            "checks": checks,
            "key_age": key_age,
            "rotation_days": KEY_ROTATION_DAYS,
            "rejections": rejections,
        },
    )
