"""Grafana dashboards: provisionable JSON, and every metric they or the alerts name is one
the running service (API and webhook worker) exports and docs/METRICS.md documents."""

from __future__ import annotations

import json
import re
from datetime import date

import httpx
import pytest
import yaml
from sqlalchemy import Engine

from paydesk.settings import Settings
from paydesk.web import create_app
from paydesk.webhooks.metrics import WorkerMetrics, serving_metrics
from paydesk.webhooks.process import build_worker
from tests.deploy.monitoring.tools import ALERTS, MONITORING
from tests.support.servers import serve_in_thread

METRICS_DOC = MONITORING.parents[1] / "docs" / "METRICS.md"
# The promtool unit tests of the worker panels' queries.
WORKER_PANELS_TEST = MONITORING / "tests" / "worker_panels_test.yml"

DASHBOARDS = sorted((MONITORING / "grafana" / "dashboards").glob("*.json"))
# A metric name in PromQL: not preceded by a name character, a quote or a brace
# (label values, label names inside {...} are matched separately below).
_NAME = re.compile(r"(?<![\w:\"'])([a-zA-Z_:][a-zA-Z0-9_:]*)")
_LABELS = re.compile(r"\{[^}]*\}")
_STRINGS = re.compile(r"\"[^\"]*\"|'[^']*'")
_DURATION = re.compile(r"\[[^\]]*\]")
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "without", "and", "or", "unless", "on",
    "ignoring", "group_left", "group_right", "bool", "rate", "increase", "delta",
    "histogram_quantile", "absent", "label_values", "le", "offset",
}  # fmt: skip
SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}


def metric_names(expr: str) -> set[str]:
    """Metric names used in a PromQL expression (functions, keywords, labels left out)."""
    bare = _DURATION.sub(" ", _LABELS.sub(" ", _STRINGS.sub(" ", expr)))
    # Label lists of aggregations and vector matching.
    bare = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", bare)
    names = set()
    for match in _NAME.finditer(bare):
        name = match.group(1)
        end = match.end()
        if name in PROMQL_WORDS or re.fullmatch(r"\d.*", name):
            continue
        if bare[end:].lstrip().startswith("(") and name not in ("up",):
            continue  # a function call
        names.add(name)
    return names


def dashboard_targets() -> list[tuple[str, str, str]]:
    """(dashboard file, panel title, query) of every panel target."""
    return [
        (path.name, panel["title"], target["expr"])
        for path in DASHBOARDS
        for panel in json.loads(path.read_text())["panels"]
        for target in panel.get("targets", [])
    ]


def dashboard_exprs() -> dict[str, list[str]]:
    out = {}
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
        for var in board["templating"]["list"]:
            query = var.get("query")
            if isinstance(query, dict):
                exprs.append(re.sub(r"^label_values\((\w+).*", r"\1", query["query"]))
        out[path.name] = exprs
    return out


def alert_exprs() -> tuple[list[str], set[str]]:
    rules = [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]
    return [str(r["expr"]) for r in rules], {str(r["record"]) for r in rules if "record" in r}


def exported_names(exposition: str) -> set[str]:
    names = set()
    for line in exposition.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            base = name.removesuffix("_total") if kind == "counter" else name
            names.add(base if kind != "counter" else name)
            names.update(base + suffix for suffix in SUFFIXES.get(kind, ()))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


def test_the_name_parser_finds_names_and_skips_the_rest() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le, route) (rate(a_b_bucket{route="/v1/x"}[5m])))'
        ' / max by (currency) (delta(c_d[10m])) > 0.1 and up{job="paydesk"} == 0'
    )
    assert metric_names(expr) == {"a_b_bucket", "c_d", "up"}
    matching = (
        "sum by (route) (rate(e_total[5m]) and on (job, instance) f_g)"
        " * ignoring (x) group_left (version) h unless on () i"
    )
    assert metric_names(matching) == {"e_total", "f_g", "h", "i"}


def test_dashboards_are_provisionable() -> None:
    assert {p.stem for p in DASHBOARDS} == {
        "payment-gateway",
        "subscriptions",
        "refunds",
        "webhooks",
    }
    uids = set()
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        assert board["uid"] not in uids
        uids.add(board["uid"])
        assert board["title"].startswith("Paydesk")
        assert board["panels"]
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids)), path.name
        for panel in board["panels"]:
            assert panel["targets"], (path.name, panel["title"])
            assert panel["datasource"]["uid"] == "${datasource}"
    provisioning = yaml.safe_load(
        (MONITORING / "grafana" / "provisioning" / "dashboards.yml").read_text()
    )
    assert provisioning["apiVersion"] == 1
    assert provisioning["providers"][0]["type"] == "file"


def worker_exposition(settings: Settings, engine: Engine) -> str:
    """``GET /metrics`` of a webhook worker built as ``paydesk worker`` builds it."""
    metrics = WorkerMetrics()
    worker = build_worker(
        settings,
        engine,
        observers=[metrics.observe_stripe],
        batch_observer=metrics.observe_batch,
    )
    metrics.watch(worker)
    worker.run_once()  # an empty round: the last-round gauge is set
    with serving_metrics(
        metrics, host="127.0.0.1", port=0, token=None, open_without_token=True
    ) as server:
        return httpx.get(f"http://127.0.0.1:{server.port}/metrics", timeout=10).text


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_metric_in_dashboards_and_alerts_is_exported(engine: Engine) -> None:
    # The key's age is exported once PAYDESK_STRIPE_KEY_CREATED is set (the manifests do).
    settings = Settings(stripe_key_created=date.today())
    with serve_in_thread(create_app(settings, engine=engine)) as base:
        api = httpx.get(f"{base}/metrics", timeout=10).text
    worker = worker_exposition(settings, engine)
    exposition = api + "\n" + worker
    exported = exported_names(exposition) | {"up"}  # `up` is Prometheus' own, per target
    assert "paydesk_stripe_api_request_duration_seconds_bucket" in exported
    assert "paydesk_webhook_rejections_total" in exported
    assert "paydesk_worker_batch_duration_seconds_bucket" in exported_names(worker)
    assert "paydesk_worker_events_total" in exported_names(worker)

    alerts, recorded = alert_exprs()
    used: dict[str, set[str]] = {"alerts.yml": set()}
    for expr in alerts:
        used["alerts.yml"] |= metric_names(expr) - recorded
    for name, exprs in dashboard_exprs().items():
        used[name] = set().union(*(metric_names(e) for e in exprs))
        assert used[name], name
    unknown = {where: names - exported for where, names in used.items() if names - exported}
    assert not unknown
    # Every metric the API or a worker exports is shown or alerted on somewhere (bar
    # build info).
    shown = set().union(*used.values())
    families = {
        line.split()[2] for line in exposition.splitlines() if line.startswith("# TYPE paydesk_")
    }
    # prometheus_client's creation times of counters and histograms (x_created next to
    # x_total or x): not figures to show.
    families -= {
        f
        for f in families
        if f.endswith("_created")
        and {f.removesuffix("_created"), f.removesuffix("_created") + "_total"} & families
    }
    unshown = {f for f in families if not any(n == f or n.startswith(f + "_") for n in shown)} - {
        "paydesk_build_info"
    }
    assert not unshown


def test_every_worker_panel_query_is_unit_tested() -> None:
    """Each query reading a worker's metrics is evaluated by promtool on made-up series."""
    tests = yaml.safe_load(WORKER_PANELS_TEST.read_text())["tests"]
    tested = {
        " ".join(str(case["expr"]).split())
        for test in tests
        for case in test.get("promql_expr_test", [])
    }
    worker_queries = {
        " ".join(expr.split()): (name, title)
        for name, title, expr in dashboard_targets()
        if "paydesk_worker_" in expr
    }
    assert len(worker_queries) >= 10
    untested = {q: where for q, where in worker_queries.items() if q not in tested}
    assert not untested
    # And the test file evaluates dashboard queries only, so it cannot drift from them.
    assert tested <= set(worker_queries)


def test_every_metric_in_dashboards_and_alerts_is_documented() -> None:
    """Every metric a panel or an alert reads is listed in docs/METRICS.md."""
    doc = METRICS_DOC.read_text()
    alerts, recorded = alert_exprs()
    exprs = alerts + [e for exprs in dashboard_exprs().values() for e in exprs]
    used = set().union(*(metric_names(e) for e in exprs)) - recorded - {"up"}
    assert any(n.startswith("paydesk_worker_") for n in used)

    def documented(name: str) -> bool:
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        return any(re.search(rf"`{re.escape(n)}[`{{]", doc) for n in (name, family))

    assert not {name for name in used if not documented(name)}
