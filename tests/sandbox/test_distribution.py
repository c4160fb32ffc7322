"""The sandbox is its own distribution: nothing of Paydesk inside it, nothing of it in Paydesk's."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import paydesk.money
import paydesk_sandbox.money

REPO = Path(__file__).resolve().parents[2]
SANDBOX_SRC = REPO / "sandbox" / "src" / "paydesk_sandbox"


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_the_sandbox_imports_nothing_of_paydesk() -> None:
    offenders = {
        str(path.relative_to(REPO)): sorted(
            name for name in _imported_modules(path) if name.split(".")[0] == "paydesk"
        )
        for path in SANDBOX_SRC.rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_currency_tables_agree_with_paydesks() -> None:
    assert paydesk_sandbox.money.ZERO_DECIMAL == paydesk.money.ZERO_DECIMAL
    assert paydesk_sandbox.money.THREE_DECIMAL == paydesk.money.THREE_DECIMAL


def test_paydesks_wheel_and_image_leave_the_sandbox_out() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"] == ["src/paydesk"]
    dockerignore = (REPO / ".dockerignore").read_text().split()
    assert "!sandbox/" not in dockerignore
    copies = [
        line
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.strip().upper().startswith("COPY")
    ]
    assert copies
    assert not [line for line in copies if "sandbox" in line]


def test_the_sandbox_wheel_holds_only_the_sandbox(tmp_path: Path) -> None:
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO / "sandbox"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if built.returncode != 0 and "hatchling" in built.stderr:
        # No hatchling in the venv: build it the way a user would, with isolation.
        built = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "-q",
                "-w",
                str(tmp_path),
                str(REPO / "sandbox"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("paydesk_sandbox-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {name.split("/")[0] for name in names}
    assert "paydesk" not in tops
    assert "paydesk_sandbox" in tops
    # The Stripe.js stand-in's assets ship with it.
    for asset in ("stripe.js", "frame.js", "card.html", "controller.html", "frame.css"):
        assert f"paydesk_sandbox/stripe_js/{asset}" in names


def test_the_sandbox_has_its_own_help() -> None:
    shown = subprocess.run(
        [sys.executable, "-m", "paydesk_sandbox", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "usage: paydesk-sandbox" in shown.stdout
    assert "--snapshot" in shown.stdout
    assert "--faults" in shown.stdout
