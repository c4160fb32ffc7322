"""docs/STRIPE_SETUP.md's sandbox quick-start works when followed literally."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.support.servers import REPO, environment_without_paydesk, free_port

DOC = REPO / "docs" / "STRIPE_SETUP.md"


def quick_start() -> str:
    """The first shell block of section 1 of the document."""
    section = DOC.read_text().split("## 1.", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "no sh block in section 1"
    return match.group(1)


def test_the_sandbox_quick_start_runs_as_written(tmp_path: Path) -> None:
    # Only the ports change, so that parallel runs do not collide.
    script = quick_start().replace("12111", str(free_port())).replace("8000", str(free_port()))
    # Stop what the block left running in the background, whatever happened.
    wrapper = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null; wait' EXIT\n" + script
    env = environment_without_paydesk()
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    result = subprocess.run(
        ["bash", "-c", wrapper],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert re.search(r"doctor: \d+ checks, 0 failed", result.stdout), output[-4000:]
