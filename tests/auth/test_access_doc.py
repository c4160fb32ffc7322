"""docs/ACCESS.md shows the permission matrix the code enforces."""

from __future__ import annotations

from pathlib import Path

from paydesk.auth import roles

DOC = Path(__file__).resolve().parents[2] / "docs" / "ACCESS.md"


def test_access_doc_has_the_enforced_matrix() -> None:
    assert roles.matrix_markdown() in DOC.read_text(), (
        "docs/ACCESS.md is stale: paste paydesk.auth.roles.matrix_markdown() into it"
    )


def test_every_permission_has_at_least_the_admin_role() -> None:
    for permission in roles.Permission:
        assert roles.can("admin", permission, live=True)
        assert roles.can("admin", permission, live=False)
