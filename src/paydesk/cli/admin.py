"""``paydesk admin`` (create, disable, reset-2fa, unlock) and ``paydesk audit verify``.

For the first admin and break-glass: these act directly on the database and are
audited with the actor ``cli:<os user>``.
"""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from paydesk.cli.common import settings_or_exit

if TYPE_CHECKING:  # ``paydesk --help`` should not pay for SQLAlchemy and pydantic
    from sqlalchemy.orm import Session

    from paydesk.settings import Settings

admin_app = typer.Typer(help="Admin accounts of the console: create, disable, reset-2fa, unlock.")
audit_app = typer.Typer(help="The audit log.")


def register(app: typer.Typer) -> None:
    """Add the ``admin`` and ``audit`` groups to ``app``."""
    app.add_typer(admin_app, name="admin")
    app.add_typer(audit_app, name="audit")


def _actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


@contextmanager
def _session() -> Iterator[tuple[Session, Settings]]:
    from paydesk.db.engine import create_engine, session_factory

    settings = settings_or_exit()
    engine = create_engine(settings.database_url.get_secret_value())
    try:
        with session_factory(engine)() as session:
            yield session, settings
            session.commit()
    finally:
        engine.dispose()


def _find(session: Session, email: str) -> object:
    from paydesk.auth.accounts import find_admin

    user = find_admin(session, email)
    if user is None:
        typer.echo(f"paydesk: no admin {email}", err=True)
        raise typer.Exit(code=1)
    return user


@admin_app.command("create")
def create_command(
    email: str = typer.Option(..., help="The admin's email (their sign-in name)."),
    role: str = typer.Option("admin", help="viewer, support, finance or admin."),
) -> None:
    """Create an admin with a generated password, printed once.

    Roles that can move money enrol in two-factor at their first sign-in.
    """
    from paydesk.auth import accounts
    from paydesk.errors import PaydeskError

    with _session() as (session, settings):
        try:
            user, password = accounts.create_admin(
                session, settings, email=email, role=role, actor=_actor()
            )
        except PaydeskError as exc:
            typer.echo(f"paydesk: {exc.message}", err=True)
            raise typer.Exit(code=1) from None
        typer.echo(f"Created {user.email} ({user.role}).")
        typer.echo(f"Password (shown once): {password}")


@admin_app.command("disable")
def disable_command(email: str = typer.Option(..., help="The admin's email.")) -> None:
    """Disable an admin: sign-in refused, sessions and API tokens revoked at once."""
    from paydesk.auth import accounts
    from paydesk.db.models import AdminUser

    with _session() as (session, settings):
        user = _find(session, email)
        assert isinstance(user, AdminUser)
        accounts.disable_admin(session, settings, user, actor=_actor())
        typer.echo(f"Disabled {user.email}; sessions and tokens revoked.")


@admin_app.command("reset-2fa")
def reset_2fa_command(email: str = typer.Option(..., help="The admin's email.")) -> None:
    """Forget an admin's TOTP seed and recovery codes; they enrol again at next sign-in."""
    from paydesk.auth import accounts
    from paydesk.db.models import AdminUser

    with _session() as (session, settings):
        user = _find(session, email)
        assert isinstance(user, AdminUser)
        accounts.reset_two_factor(session, settings, user, actor=_actor())
        typer.echo(f"Two-factor reset for {user.email}; sessions and tokens revoked.")


@admin_app.command("unlock")
def unlock_command(email: str = typer.Option(..., help="The admin's email.")) -> None:
    """End an admin's sign-in back-off from every address (and any account lock)."""
    from paydesk.auth import lockout
    from paydesk.db.models import AdminUser

    with _session() as (session, settings):
        user = _find(session, email)
        assert isinstance(user, AdminUser)
        lockout.unlock(session, settings, user, actor=_actor())
        typer.echo(f"Sign-in back-off ended for {user.email}; sessions and tokens unchanged.")


@audit_app.command("verify")
def verify_command() -> None:
    """Recompute the audit log's hash chain; exit 1 at the first tampered entry."""
    from paydesk.auth import audit

    with _session() as (session, settings):
        report = audit.verify(session, settings)
    if report.ok:
        typer.echo(f"Audit log intact: {report.checked} entries verified.")
        return
    typer.echo(
        f"Audit log TAMPERED at entry {report.broken_at}: {report.reason} "
        f"({report.checked} entries verified before it).",
        err=True,
    )
    raise typer.Exit(code=1)
