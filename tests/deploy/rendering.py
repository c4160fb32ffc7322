"""Render the kustomize overlays under deploy/k8s with kubectl, offline.

`kubectl kustomize` needs no cluster. It must embed kustomize v4 or newer (kubectl
1.21+): the overlays use `configMapGenerator.envs` and `patches`, which the
kustomize v2 inside Debian bookworm's kubernetes-client (1.20) does not know.
Without a suitable kubectl these tests skip on a developer machine and fail
under CI (CI=true), so a missing tool can never pass for a green run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
MIN_KUSTOMIZE_MAJOR = 4

Doc = dict[str, Any]


def _unavailable(reason: str) -> None:
    message = (
        f"{reason}. The deployment tests render the overlays with `kubectl kustomize` "
        "(kubectl >= 1.21, kustomize >= v4); install kubectl and rerun."
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@cache
def _kubectl_problem() -> str | None:
    """Why kubectl cannot render the overlays, or None when it can."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "kubectl is not on PATH"
    result = subprocess.run(
        [kubectl, "version", "--client", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        return f"`kubectl version --client` failed: {result.stderr.strip()}"
    version = json.loads(result.stdout).get("kustomizeVersion", "")
    match = re.match(r"v?(\d+)\.", version)
    if match is None or int(match.group(1)) < MIN_KUSTOMIZE_MAJOR:
        return f"kubectl embeds kustomize {version or 'of unknown version'}, older than v4"
    return None


def require_kubectl() -> str:
    """The kubectl path; skips (or fails under CI) when it cannot render the overlays."""
    problem = _kubectl_problem()
    if problem is not None:
        _unavailable(problem)
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    return kubectl


@cache
def _render(directory: Path) -> str:
    result = subprocess.run(
        [require_kubectl(), "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return result.stdout


def render_text(overlay: str) -> str:
    """The overlay's rendered manifests as kubectl prints them."""
    return _render(K8S / overlay)


def render(overlay: str) -> list[Doc]:
    """The overlay's rendered manifests, one dict per document."""
    return [doc for doc in yaml.safe_load_all(render_text(overlay)) if doc]


def pod_templates(docs: list[Doc]) -> dict[str, Doc]:
    """Every workload's pod template, keyed by ``Kind/name``."""
    templates: dict[str, Doc] = {}
    for doc in docs:
        key = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] in {"Deployment", "StatefulSet", "DaemonSet", "Job"}:
            templates[key] = doc["spec"]["template"]
        elif doc["kind"] == "CronJob":
            templates[key] = doc["spec"]["jobTemplate"]["spec"]["template"]
    return templates


def containers(template: Doc) -> list[Doc]:
    """The template's init and regular containers."""
    spec = template["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def find(docs: list[Doc], kind: str, name: str) -> Doc:
    """The one document of ``kind`` named ``name``."""
    matches = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def walk(node: Any) -> list[Any]:
    """Every dict and list inside ``node``, depth first, ``node`` included."""
    found: list[Any] = []
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, dict):
            found.append(current)
            stack.extend(current.values())
        elif isinstance(current, list):
            found.append(current)
            stack.extend(current)
    return found


def secret_key_refs(node: Any) -> list[Doc]:
    """Every ``secretKeyRef`` (name + key) anywhere inside ``node``."""
    return [
        item["secretKeyRef"]
        for item in walk(node)
        if isinstance(item, dict) and isinstance(item.get("secretKeyRef"), dict)
    ]
