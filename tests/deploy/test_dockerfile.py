"""The Dockerfile's essentials, checked without a Docker engine."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.deploy.rendering import REPO

DOCKERFILE = REPO / "Dockerfile"
LOCK = REPO / "requirements.lock"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, instruction: str) -> list[str]:
        return [value for keyword, value in self.instructions if keyword == instruction]


def parse() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, continuation lines joined as Docker does."""
    text = re.sub(r"\\\n", "", DOCKERFILE.read_text())
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, value = line.partition(" ")
        keyword, value = keyword.upper(), value.strip()
        if keyword == "FROM":
            base, _, name = value.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip() or None))
        elif not stages and keyword == "ARG":
            arg, _, default = value.partition("=")
            global_args[arg] = default
        else:
            stages[-1].instructions.append((keyword, value))
    return global_args, stages


def test_multi_stage_build_on_python_3_11_slim() -> None:
    global_args, stages = parse()
    assert len(stages) >= 2, "expected a build stage and a slimmer runtime stage"
    for stage in stages:
        base = re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], stage.base)
        assert base.startswith("python:3.11-slim"), stage.base


def test_runtime_stage_runs_as_uid_10001() -> None:
    _, stages = parse()
    runtime = stages[-1]
    users = runtime.args("USER")
    assert users, "the runtime stage never leaves root"
    uid = users[-1].split(":")[0]
    # Numeric, so Kubernetes' runAsNonRoot can verify it; equal to runAsUser there.
    assert uid == "10001"
    assert any("--uid 10001" in command for command in runtime.args("RUN"))
    after_user = runtime.instructions[runtime.instructions.index(("USER", users[-1])) :]
    assert "RUN" not in [keyword for keyword, _ in after_user[1:]]


def test_dependencies_install_from_the_lock_with_hashes_then_the_package_without() -> None:
    _, stages = parse()
    runs = [command for stage in stages for command in stage.args("RUN")]
    installs = [
        part.strip()
        for command in runs
        for part in command.split("&&")
        if re.search(r"\buv pip install\b", part)
    ]
    assert len(installs) == 2
    locked, package = installs
    assert "--require-hashes" in locked
    assert "-r runtime.lock" in locked
    assert any("requirements.lock" in command and "runtime.lock" in command for command in runs)
    assert "--no-deps" in package
    assert shlex.split(package)[-1] == "."
    copies = [value for stage in stages for value in stage.args("COPY")]
    assert any("requirements.lock" in value for value in copies)


def test_the_runtime_selection_keeps_the_locks_hashes_and_drops_dev_tools(
    tmp_path: Path,
) -> None:
    # Run the Dockerfile's own awk program on the real lock with a known selection.
    _, stages = parse()
    (command,) = [c for stage in stages for c in stage.args("RUN") if "awk '" in c]
    program = re.search(r"awk '(.*?)'", command)
    assert program is not None
    names = tmp_path / "runtime-names.txt"
    names.write_text("fastapi==0\nstripe==0\n")
    result = subprocess.run(
        ["awk", program.group(1), str(names), str(LOCK)],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    pins = re.findall(r"^([a-z0-9-]+)==", result.stdout, flags=re.MULTILINE)
    assert pins == ["fastapi", "stripe"]
    lock_text = LOCK.read_text()
    for name in pins:
        block = re.search(rf"^{name}==.*?(?=^\S)", lock_text, flags=re.MULTILINE | re.DOTALL)
        assert block is not None
        assert block.group(0) in result.stdout, f"{name}'s hashes were not copied as locked"
    assert "--hash=sha256:" in result.stdout


def test_default_command_serves_on_all_interfaces() -> None:
    _, stages = parse()
    runtime = stages[-1]
    entrypoint = json.loads(runtime.args("ENTRYPOINT")[-1])
    command = json.loads(runtime.args("CMD")[-1])
    argv = entrypoint + command
    assert argv[:2] == ["paydesk", "serve"]
    assert argv[argv.index("--host") + 1] == "0.0.0.0"  # noqa: S104  (inside a container)
    assert "8000" in runtime.args("EXPOSE")


@pytest.mark.parametrize("word", ["KEY", "SECRET", "TOKEN", "PASSWORD", "DATABASE_URL"])
def test_no_secret_is_baked_into_the_image(word: str) -> None:
    global_args, stages = parse()
    declared = list(global_args)
    for stage in stages:
        for keyword, value in stage.instructions:
            if keyword == "ARG":
                declared.append(value.partition("=")[0])
            elif keyword == "ENV":
                declared += re.findall(r"(\w+)=", value)
    assert not [name for name in declared if word in name.upper()]


def test_build_context_is_an_allow_list() -> None:
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert patterns[0] == "*", "the build context should start from nothing"
    included = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    assert not any(".env" in name or name.endswith(".db") for name in included)
    _, stages = parse()
    for stage in stages:
        for value in stage.args("COPY"):
            if value.startswith("--from="):
                continue
            *sources, _destination = value.split()
            for source in sources:
                assert source.rstrip("/") in included, f"COPY {source} is excluded by .dockerignore"
