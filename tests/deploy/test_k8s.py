"""The kustomize overlays render, validate against Kubernetes' schemas and keep
staging on Stripe test keys and production on live keys."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.deploy.rendering import (
    K8S,
    REPO,
    Doc,
    containers,
    find,
    pod_templates,
    render,
    render_text,
    secret_key_refs,
)

SECRET_NAME = "cloudtolocalllm-secrets"
# Oldest Kubernetes the manifests support (CronJob.spec.timeZone is GA in 1.27)
# and the newest the installed schemas know.
KUBERNETES_VERSIONS = ("1.27.0", kubernetes_validate.latest_version())
# In a container the server must listen on every interface, and /tmp is the one
# writable path (an emptyDir); neither is the risk ruff's S104/S108 warn about.
ALL_INTERFACES = "0.0.0.0"  # noqa: S104
TMP = "/tmp"  # noqa: S108
API_PORT = 8000
WORKER_METRICS_PORT = 9000
STRIPE_KEY = re.compile(r"\b(?:sk|rk|pk)_(test|live)_[A-Za-z0-9]+|\bwhsec_[A-Za-z0-9+/=]{8,}")


@dataclass(frozen=True)
class Overlay:
    name: str
    namespace: str
    mode: str  # Stripe key mode this environment must use
    other_mode: str
    host: str


STAGING = Overlay(
    "staging", "cloudtolocalllm-staging", "test", "live", "api-staging.cloudtolocalllm.online"
)
PRODUCTION = Overlay("production", "cloudtolocalllm", "live", "test", "api.cloudtolocalllm.online")
OVERLAYS = [pytest.param(STAGING, id="staging"), pytest.param(PRODUCTION, id="production")]


def env_of(container: Doc) -> dict[str, Doc]:
    return {entry["name"]: entry for entry in container.get("env", [])}


# --- schema validation ------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_rendered_document_is_valid_kubernetes(overlay: Overlay, version: str) -> None:
    docs = render(overlay.name)
    assert len(docs) >= 10, "the overlay rendered suspiciously few documents"
    for doc in docs:
        # strict: unknown fields (a misspelt `livenesProbe`) are errors, not ignored.
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (["spec", "template", "spec", "containers", 0, "livenesProbe"], {}),  # misspelt
        (["spec", "template", "spec", "containers", 0, "ports", 0, "containerPort"], "http"),
        (["spec", "selector"], None),  # required field removed
    ],
    ids=["unknown-field", "wrong-type", "missing-required"],
)
def test_the_validator_rejects_broken_manifests(path: list[Any], value: Any) -> None:
    # Proves the validation above is live: the same call refuses a broken copy.
    deployment = copy.deepcopy(find(render("production"), "Deployment", "api-backend"))
    parent: Any = deployment
    for step in path[:-1]:
        parent = parent[step]
    if value is None:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[-1], strict=True)


# --- environments and Stripe keys -------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_everything_lands_in_the_overlay_namespace(overlay: Overlay) -> None:
    docs = render(overlay.name)
    assert {doc["metadata"].get("namespace") for doc in docs} == {overlay.namespace}
    assert not [doc for doc in docs if doc["kind"] == "Namespace"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_environments_stripe_key_mode_is_referenced(overlay: Overlay) -> None:
    docs = render(overlay.name)
    refs = secret_key_refs(docs)
    assert {ref["name"] for ref in refs} == {SECRET_NAME}
    stripe_keys = {ref["key"] for ref in refs if ref["key"].startswith("stripe-")}
    assert stripe_keys == {
        f"stripe-{overlay.mode}-secret-key",
        f"stripe-{overlay.mode}-publishable-key",
        f"stripe-{overlay.mode}-webhook-secret",
    }
    text = render_text(overlay.name)
    assert f"stripe-{overlay.other_mode}-" not in text
    for prefix in ("sk", "rk", "pk"):
        assert f"{prefix}_{overlay.other_mode}" not in text


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_api_backend_reads_its_keys_as_the_guide_verifies(overlay: Overlay) -> None:
    # The guide: `kubectl get deployment api-backend -n NS -o yaml | grep STRIPE` shows
    # STRIPE_SECRET_KEY from secretKeyRef key stripe-live-secret-key in production.
    deployment = find(render(overlay.name), "Deployment", "api-backend")
    assert deployment["metadata"]["namespace"] == overlay.namespace
    (api,) = deployment["spec"]["template"]["spec"]["containers"]
    env = env_of(api)
    for variable, key in (
        ("STRIPE_SECRET_KEY", f"stripe-{overlay.mode}-secret-key"),
        ("STRIPE_PUBLISHABLE_KEY", f"stripe-{overlay.mode}-publishable-key"),
        ("STRIPE_WEBHOOK_SECRET", f"stripe-{overlay.mode}-webhook-secret"),
    ):
        assert env[variable]["valueFrom"]["secretKeyRef"] == {"name": SECRET_NAME, "key": key}
    assert env["PAYDESK_DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "database-url"
    assert env["PAYDESK_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]["key"] == "metrics-token"
    dumped = yaml.safe_dump(deployment)
    assert re.search(
        rf"- name: STRIPE_SECRET_KEY\n\s+valueFrom:\n\s+secretKeyRef:\n"
        rf"\s+key: stripe-{overlay.mode}-secret-key\n",
        dumped,
    ), "the guide's verification grep would not show the expected lines"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_paydesk_process_gets_the_settings_it_requires(overlay: Overlay) -> None:
    # Outside development the settings refuse to load without STRIPE_SECRET_KEY, so
    # a workload without it would crash-loop (or a migration would never run).
    docs = render(overlay.name)
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    for name, template in pod_templates(docs).items():
        for container in containers(template):
            env = env_of(container)
            assert env["STRIPE_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == (
                f"stripe-{overlay.mode}-secret-key"
            ), name
            assert "PAYDESK_DATABASE_URL" in env, name
            config_refs = [e["configMapRef"]["name"] for e in container.get("envFrom", [])]
            assert config_refs == [config_map["metadata"]["name"]], name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_map_holds_the_environment_and_the_three_prices(overlay: Overlay) -> None:
    (config_map,) = [d for d in render(overlay.name) if d["kind"] == "ConfigMap"]
    data = config_map["data"]
    assert config_map["metadata"]["name"].startswith("paydesk-config-")  # content hash
    assert data["PAYDESK_ENV"] == overlay.name
    for tier in ("FREE", "PREMIUM", "ENTERPRISE"):
        assert data[f"STRIPE_PRICE_{tier}"].startswith("price_"), tier
        assert overlay.mode.upper() in data[f"STRIPE_PRICE_{tier}"], tier
    assert data["PAYDESK_HOST"] == ALL_INTERFACES
    assert data["PAYDESK_LOG_FORMAT"] == "json"
    # Nothing secret belongs in a ConfigMap.
    assert not any(STRIPE_KEY.search(value) for value in data.values())


# --- the Secret stays out of git ----------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_is_rendered(overlay: Overlay) -> None:
    docs = render(overlay.name)
    assert [d["metadata"]["name"] for d in docs if d["kind"] == "Secret"] == []
    assert "secrets.example.yaml" not in (K8S / overlay.name / "kustomization.yaml").read_text()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_example_matches_what_the_overlay_reads(overlay: Overlay) -> None:
    example = yaml.safe_load((K8S / overlay.name / "secrets.example.yaml").read_text())
    assert example["kind"] == "Secret"
    assert example["metadata"] == {"name": SECRET_NAME, "namespace": overlay.namespace}
    referenced = {ref["key"] for ref in secret_key_refs(render(overlay.name))}
    assert set(example["stringData"]) == referenced
    for key, value in example["stringData"].items():
        assert value.startswith("REPLACE_WITH_"), f"{key} is not a placeholder"


def test_no_file_under_deploy_or_the_dockerfile_holds_a_key() -> None:
    files = [p for p in (K8S.parent).rglob("*") if p.is_file()]
    files += [REPO / "Dockerfile", REPO / ".dockerignore"]
    assert len(files) > 10
    for path in files:
        match = STRIPE_KEY.search(path.read_text())
        assert match is None, f"{path} holds something shaped like a Stripe key"


# --- pod hardening, probes, resources ----------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_runs_non_root_with_a_read_only_root(overlay: Overlay) -> None:
    templates = pod_templates(render(overlay.name))
    assert set(templates) == {
        "Deployment/api-backend",
        "Deployment/paydesk-worker",
        "Job/paydesk-migrate",
        "CronJob/paydesk-events-backfill",
    }
    for name, template in templates.items():
        spec = template["spec"]
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["runAsUser"] == 10001, name  # the Dockerfile's USER
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert spec["automountServiceAccountToken"] is False, name
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for container in containers(template):
            where = f"{name} container {container['name']}"
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["runAsNonRoot"] is True, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert "add" not in security["capabilities"], where
            assert security.get("privileged") is not True, where
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == TMP]
            assert len(tmp) == 1, f"{where} has no writable /tmp"
            assert "emptyDir" in volumes[tmp[0]["name"]], where


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: Overlay) -> None:
    for name, template in pod_templates(render(overlay.name)).items():
        for container in containers(template):
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) >= {"cpu", "memory"}, f"{name} {bound}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_serving_container_has_liveness_and_readiness_probes(overlay: Overlay) -> None:
    serving = 0
    for name, template in pod_templates(render(overlay.name)).items():
        for container in containers(template):
            ports = {p["name"]: p["containerPort"] for p in container.get("ports", [])}
            if not ports:
                continue
            serving += 1
            liveness = container["livenessProbe"]["httpGet"]
            readiness = container["readinessProbe"]["httpGet"]
            assert liveness["path"] == "/healthz", name
            assert readiness["path"] == "/readyz", name
            assert {liveness["port"], readiness["port"]} <= set(ports) | set(ports.values())
    assert serving >= 1, "no container serves HTTP; the API Deployment is missing its port"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_workload_runs_its_paydesk_command(overlay: Overlay) -> None:
    docs = render(overlay.name)
    templates = pod_templates(docs)
    commands = {name: containers(template)[0]["args"] for name, template in templates.items()}
    assert commands == {
        "Deployment/api-backend": ["serve", "--host", ALL_INTERFACES, "--port", "8000"],
        "Deployment/paydesk-worker": ["worker", "--metrics-port", str(WORKER_METRICS_PORT)],
        "Job/paydesk-migrate": ["migrate"],
        "CronJob/paydesk-events-backfill": ["events", "backfill", "--since", "2h"],
    }
    (api,) = templates["Deployment/api-backend"]["spec"]["containers"]
    assert [p["containerPort"] for p in api["ports"]] == [8000]
    images = {c["image"] for t in templates.values() for c in containers(t)}
    assert len(images) == 1, "every process should run the same image"
    (image,) = images
    name, _, tag = image.rpartition(":")
    assert name.endswith("/paydesk"), image
    assert tag, "the image must carry a release tag"
    assert tag != "latest", "the image must be pinned to a release tag"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_backfill_runs_hourly_one_at_a_time(overlay: Overlay) -> None:
    cron = find(render(overlay.name), "CronJob", "paydesk-events-backfill")["spec"]
    minute, *rest = cron["schedule"].split()
    assert minute.isdigit(), "the backfill should run once an hour, at a fixed minute"
    assert int(minute) < 60
    assert rest == ["*", "*", "*", "*"]
    assert cron["concurrencyPolicy"] == "Forbid"


# --- traffic: Service, Ingress, NetworkPolicy; availability: HPA, PDB -------------


def _matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ingress_serves_the_environments_host_over_tls(overlay: Overlay) -> None:
    docs = render(overlay.name)
    ingress = find(docs, "Ingress", "api-backend")["spec"]
    assert [rule["host"] for rule in ingress["rules"]] == [overlay.host]
    assert [tls["hosts"] for tls in ingress["tls"]] == [[overlay.host]]
    assert all(tls.get("secretName") for tls in ingress["tls"])
    (path,) = ingress["rules"][0]["http"]["paths"]
    backend = path["backend"]["service"]
    service = find(docs, "Service", backend["name"])["spec"]
    assert backend["port"]["name"] in {p["name"] for p in service["ports"]}
    api_labels = find(docs, "Deployment", "api-backend")["spec"]["template"]["metadata"]
    assert _matches(service["selector"], api_labels["labels"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policy_admits_only_ingress_and_monitoring_and_limits_egress(
    overlay: Overlay,
) -> None:
    docs = render(overlay.name)
    (policy,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    spec = policy["spec"]
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    for name, template in pod_templates(docs).items():
        assert _matches(spec["podSelector"]["matchLabels"], template["metadata"]["labels"]), name
    api_rule, worker_rule = spec["ingress"]
    assert api_rule["ports"] == [{"protocol": "TCP", "port": API_PORT}]
    assert worker_rule["ports"] == [{"protocol": "TCP", "port": WORKER_METRICS_PORT}]
    for rule in (api_rule, worker_rule):
        assert all(set(peer) == {"namespaceSelector"} for peer in rule["from"])
    sources = [peer["namespaceSelector"]["matchLabels"] for peer in api_rule["from"]]
    assert sources == [
        {"kubernetes.io/metadata.name": "ingress-nginx"},
        {"kubernetes.io/metadata.name": "monitoring"},
    ]
    # The worker's metrics are for Prometheus only.
    (worker_source,) = worker_rule["from"]
    assert worker_source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    egress_ports = {(p["protocol"], p["port"]) for r in spec["egress"] for p in r["ports"]}
    # 9090: Prometheus (monitoring namespace), for the console's Alerts page.
    assert egress_ports == {("UDP", 53), ("TCP", 53), ("TCP", 5432), ("TCP", 443), ("TCP", 9090)}
    assert all(r.get("ports") for r in spec["egress"]), "an egress rule allows every port"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaler_and_disruption_budget_cover_the_api(overlay: Overlay) -> None:
    docs = render(overlay.name)
    deployment = find(docs, "Deployment", "api-backend")
    # A fixed replica count would fight the autoscaler on every apply.
    assert "replicas" not in deployment["spec"]
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    hpa = find(docs, "HorizontalPodAutoscaler", "api-backend")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "api-backend",
    }
    assert 1 <= hpa["minReplicas"] < hpa["maxReplicas"]
    if overlay is PRODUCTION:
        assert hpa["minReplicas"] >= 2, "production must survive losing one API pod"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budgets = [d["spec"] for d in docs if d["kind"] == "PodDisruptionBudget"]
    covering = [b for b in budgets if _matches(b["selector"]["matchLabels"], labels)]
    assert len(covering) == 1
    assert covering[0].get("maxUnavailable") == 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_documented_migration_step_applies_what_the_job_needs(overlay: Overlay) -> None:
    # docs/OPERATIONS.md applies `-l 'app.kubernetes.io/component in (common,migrate)'`
    # before the rollout; the Job's pod must find its ServiceAccount and ConfigMap.
    docs = render(overlay.name)
    selected = [
        d
        for d in docs
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        in {"common", "migrate"}
    ]
    assert sorted(d["kind"] for d in selected) == [
        "ConfigMap",
        "Job",
        "NetworkPolicy",
        "ServiceAccount",
    ]
    job = find(selected, "Job", "paydesk-migrate")["spec"]["template"]["spec"]
    names = {(d["kind"], d["metadata"]["name"]) for d in selected}
    assert ("ServiceAccount", job["serviceAccountName"]) in names
    for ref in job["containers"][0]["envFrom"]:
        assert ("ConfigMap", ref["configMapRef"]["name"]) in names
    assert "in (common,migrate)" in (REPO / "docs" / "OPERATIONS.md").read_text()


# --- the worker's metrics: port, probes, token, discovery ----------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_serves_its_metrics_and_probes_on_its_metrics_port(overlay: Overlay) -> None:
    docs = render(overlay.name)
    template = pod_templates(docs)["Deployment/paydesk-worker"]
    (worker,) = containers(template)
    assert worker["ports"] == [
        {"name": "metrics", "containerPort": WORKER_METRICS_PORT, "protocol": "TCP"}
    ]
    args = worker["args"]
    assert args[args.index("--metrics-port") + 1] == str(WORKER_METRICS_PORT)
    # It listens on PAYDESK_HOST, which the ConfigMap sets to every interface.
    assert "--metrics-host" not in args
    (config_map,) = [d for d in docs if d["kind"] == "ConfigMap"]
    assert config_map["data"]["PAYDESK_HOST"] == ALL_INTERFACES
    assert worker["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert worker["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    # Scrapes carry the API's bearer token; the worker checks the same one.
    token = env_of(worker)["PAYDESK_METRICS_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token == {"name": SECRET_NAME, "key": "metrics-token"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_workers_are_discovered_through_a_headless_service(overlay: Overlay) -> None:
    docs = render(overlay.name)
    service = find(docs, "Service", "paydesk-worker")["spec"]
    assert service["clusterIP"] == "None"
    assert service["ports"] == [
        {"name": "metrics", "port": WORKER_METRICS_PORT, "targetPort": "metrics", "protocol": "TCP"}
    ]
    templates = pod_templates(docs)
    selected = [
        name
        for name, template in templates.items()
        if _matches(service["selector"], template["metadata"]["labels"])
    ]
    assert selected == ["Deployment/paydesk-worker"]
    # The API's Service does not pick up the workers (they do not serve the API).
    api_service = find(docs, "Service", "api-backend")["spec"]
    worker_labels = templates["Deployment/paydesk-worker"]["metadata"]["labels"]
    assert not _matches(api_service["selector"], worker_labels)


def test_the_documented_scrape_config_keeps_both_services() -> None:
    # docs/OPERATIONS.md's scrape job keeps the Services by name; one without the
    # worker's would leave its metrics unscraped, one without the API's the rest.
    text = (REPO / "docs" / "OPERATIONS.md").read_text()
    (block,) = re.findall(r"```yaml\n(scrape_configs:.*?)```", text, flags=re.DOTALL)
    config = yaml.safe_load(block)
    (job,) = config["scrape_configs"]
    assert job["job_name"] == "paydesk"
    (keep,) = [r for r in job["relabel_configs"] if r.get("action") == "keep"]
    assert keep["source_labels"] == ["__meta_kubernetes_service_name"]
    pattern = re.compile(f"^(?:{keep['regex']})$")  # Prometheus anchors its regexes
    for name in ("api-backend", "paydesk-worker"):
        assert pattern.match(name), name
        find(render("production"), "Service", name)
    assert not pattern.match("kube-dns")
