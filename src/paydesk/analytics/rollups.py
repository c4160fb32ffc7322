"""Incremental analytics: the rows the business metrics read, kept in step with the mirror.

Whatever writes the mirror (the webhook worker, the Admin API after a Stripe
call) goes through a session made by ``paydesk.db.engine.session_factory``. That
session notes, at each flush, the keys its changes touch: the (currency, UTC day)
of each payment, refund, dispute (created and closed) and subscription, and the
(currency, customer) of each subscription. Just before the transaction commits,
``refresh`` recomputes those keys from the mirror and the webhook inbox, by
indexed queries, and writes the rollups in the same transaction.

Recomputing (rather than adding deltas) makes the rollups exact whatever the
order of events, duplicates and replays: a key's rollup is a function of the
mirror rows it covers. On PostgreSQL, two transactions touching one key are
serialised by an advisory lock taken (in a fixed order) before the recompute,
so the second one recomputes after the first has committed.

A customer's recompute also adds the difference its new segments make to each
month's movements (``paydesk.analytics.months``, table ``mrr_months``).

``rebuild`` recomputes everything, in batches (``paydesk analytics rebuild``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from sqlalchemy import Table, delete, event, func, insert, inspect, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from paydesk.analytics import months
from paydesk.analytics.business import (
    DAY,
    NEVER_STARTED_STATUSES,
    NOT_REVENUE_STATUSES,
    SUBSCRIPTION_EVENTS,
    SubscriptionSpan,
    day_of,
    unix,
)
from paydesk.analytics.reference import price_history, span_of
from paydesk.db.models import Dispute, Payment, Refund, StripeEvent, Subscription
from paydesk.db.models.analytics import (
    DailyRollup,
    MrrCustomer,
    MrrDaily,
    MrrMonth,
    MrrSegment,
    SubscriptionDaily,
)

PENDING = "paydesk.analytics_pending"
OTHER_TIER = "other"  # the tier label of subscriptions without one

# The kinds of day keys, each recomputed by its own function below.
PAYMENTS, REFUNDS, DISPUTES_OPENED, DISPUTES_CLOSED, SUBSCRIPTIONS_NEW = (
    "payments",
    "refunds",
    "disputes_opened",
    "disputes_closed",
    "subscriptions_new",
)


@dataclass
class Pending:
    """Keys touched in the current transaction and not yet recomputed."""

    days: dict[str, set[tuple[str, int]]] = field(default_factory=lambda: defaultdict(set))
    tiers: set[tuple[str, str, int]] = field(default_factory=set)  # (tier, status, day)
    customers: set[tuple[str, str]] = field(default_factory=set)
    subscriptions: set[str] = field(default_factory=set)  # stripe ids: customer looked up

    def __bool__(self) -> bool:
        return bool(self.customers or self.subscriptions or self.tiers or any(self.days.values()))


def pending(session: Session) -> Pending:
    """The session's pending keys (created on first use)."""
    found: Pending | None = session.info.get(PENDING)
    if found is None:
        found = session.info[PENDING] = Pending()
    return found


def touch_subscriptions(session: Session, subscription_ids: Iterable[str]) -> None:
    """Have the MRR of these subscriptions' customers recomputed before the commit.

    For writers that change what the spans depend on without an ORM change to the
    subscription row: the worker applying a subscription event (a stale one leaves
    the row as it is, but the stored event is part of the price history).
    """
    pending(session).subscriptions.update(subscription_ids)


# --- noting keys at flush ----------------------------------------------------------


def _values(obj: Any, name: str) -> list[Any]:
    """The attribute's value now and, if it changed in this flush, before."""
    history = inspect(obj).attrs[name].history
    return [v for v in (*history.added, *history.unchanged, *history.deleted) if v is not None]


def _day_keys(obj: Any, created: str = "stripe_created") -> set[tuple[str, int]]:
    return {
        (str(cur), day_of(int(at)))
        for cur in _values(obj, "currency")
        for at in _values(obj, created)
    }


def note_flush(session: Session, _context: Any) -> None:
    """``after_flush``: note the keys of every mirror row this flush wrote."""
    keys = pending(session)
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Payment):
            keys.days[PAYMENTS] |= _day_keys(obj)
        elif isinstance(obj, Refund):
            keys.days[REFUNDS] |= _day_keys(obj)
        elif isinstance(obj, Dispute):
            keys.days[DISPUTES_OPENED] |= _day_keys(obj)
            keys.days[DISPUTES_CLOSED] |= {
                (str(cur), day_of(unix(closed)))
                for cur in _values(obj, "currency")
                for closed in _values(obj, "closed_at")
            }
        elif isinstance(obj, Subscription):
            keys.days[SUBSCRIPTIONS_NEW] |= _day_keys(obj)
            keys.tiers |= {
                (str(tier), str(status), day_of(int(at)))
                for tier in _values(obj, "tier") or [OTHER_TIER]
                for status in _values(obj, "status")
                for at in _values(obj, "stripe_created")
            }
            if not inspect(obj).attrs["tier"].history.unchanged:
                # A tier set or changed in this flush may have been NULL ("other") before.
                keys.tiers |= {
                    (OTHER_TIER, str(status), day_of(int(at)))
                    for status in _values(obj, "status")
                    for at in _values(obj, "stripe_created")
                }
            keys.customers |= {
                (str(cur), str(customer))
                for cur in _values(obj, "currency")
                for customer in _values(obj, "customer_id")
            }
        elif (
            isinstance(obj, StripeEvent)
            and obj.type in SUBSCRIPTION_EVENTS
            and obj.object_id is not None
        ):
            keys.subscriptions.add(obj.object_id)


def refresh_before_commit(session: Session) -> None:
    """``before_commit``: recompute what this transaction touched, in it.

    SQLAlchemy fires ``before_commit`` for savepoints too. Only the outer commit
    recomputes: advisory locks taken at a savepoint would be held while the rest of
    the transaction updates mirror rows, and a request holding one of those rows
    while it waits for the same lock at its own commit deadlocks with it.
    """
    if session.in_nested_transaction():
        return
    refresh(session)


def forget(session: Session, transaction: Any) -> None:
    """``after_transaction_end``: drop the keys of a finished outer transaction."""
    if transaction.parent is None:
        session.info.pop(PENDING, None)


def install() -> None:
    """Keep the rollups of every ORM session in step with its mirror writes (idempotent)."""
    for name, listener in (
        ("after_flush", note_flush),
        ("before_commit", refresh_before_commit),
        ("after_transaction_end", forget),
    ):
        if not event.contains(Session, name, listener):
            event.listen(Session, name, listener)


# --- recomputing --------------------------------------------------------------------


def _postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _lock(session: Session, keys: Iterable[str]) -> None:
    """Serialise the recompute of these keys with other transactions (PostgreSQL)."""
    if not _postgres(session):
        return  # SQLite: one writer at a time already
    for key in sorted(set(keys)):
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 0))"), {"k": key})


def _upsert(session: Session, table: Table, key: dict[str, Any], values: dict[str, Any]) -> None:
    dialect_insert = postgresql.insert if _postgres(session) else sqlite.insert
    statement = dialect_insert(table).values({**key, **values})
    statement = statement.on_conflict_do_update(index_elements=list(key), set_=values)
    session.execute(statement)


def _in_day(column: Any, day: int) -> Any:
    return (column >= day) & (column < day + DAY)


def _payments_day(session: Session, currency: str, day: int) -> dict[str, int]:
    created, succeeded, failed, volume = session.execute(
        select(
            func.count(),
            func.count().filter(Payment.status == "succeeded"),
            func.count().filter(Payment.status != "succeeded", Payment.failure_code.is_not(None)),
            func.coalesce(
                func.sum(Payment.amount_received).filter(Payment.status == "succeeded"), 0
            ),
        ).where(Payment.currency == currency, _in_day(Payment.stripe_created, day))
    ).one()
    return {
        "payments_created": int(created),
        "payments_succeeded": int(succeeded),
        "payments_failed": int(failed),
        "payments_volume": int(volume),
    }


def _refunds_day(session: Session, currency: str, day: int) -> dict[str, int]:
    created, succeeded, amount = session.execute(
        select(
            func.count(),
            func.count().filter(Refund.status == "succeeded"),
            func.coalesce(func.sum(Refund.amount).filter(Refund.status == "succeeded"), 0),
        ).where(Refund.currency == currency, _in_day(Refund.stripe_created, day))
    ).one()
    return {
        "refunds_created": int(created),
        "refunds_succeeded": int(succeeded),
        "refunds_amount": int(amount),
    }


def _disputes_opened_day(session: Session, currency: str, day: int) -> dict[str, int]:
    opened = session.scalar(
        select(func.count()).where(
            Dispute.currency == currency, _in_day(Dispute.stripe_created, day)
        )
    )
    return {"disputes_opened": int(opened or 0)}


def _disputes_closed_day(session: Session, currency: str, day: int) -> dict[str, int]:
    rows = session.execute(
        select(Dispute.stripe_created, Dispute.closed_at).where(
            Dispute.currency == currency,
            Dispute.closed_at >= datetime.fromtimestamp(day, UTC),
            Dispute.closed_at < datetime.fromtimestamp(day + DAY, UTC),
        )
    ).all()
    durations = [unix(closed) - int(created) for created, closed in rows if closed is not None]
    return {"disputes_resolved": len(durations), "disputes_resolution_seconds": sum(durations)}


def _subscriptions_day(session: Session, currency: str, day: int) -> dict[str, int]:
    count = session.scalar(
        select(func.count()).where(
            Subscription.currency == currency,
            Subscription.status.not_in(NEVER_STARTED_STATUSES),
            _in_day(Subscription.stripe_created, day),
        )
    )
    return {"subscriptions_new": int(count or 0)}


DAY_KINDS: dict[str, Callable[[Session, str, int], dict[str, int]]] = {
    PAYMENTS: _payments_day,
    REFUNDS: _refunds_day,
    DISPUTES_OPENED: _disputes_opened_day,
    DISPUTES_CLOSED: _disputes_closed_day,
    SUBSCRIPTIONS_NEW: _subscriptions_day,
}


def refresh_day(session: Session, kind: str, currency: str, day: int) -> None:
    """Recompute one kind of figures of one (currency, day) from the mirror."""
    values = DAY_KINDS[kind](session, currency, day)
    _upsert(session, DailyRollup.__table__, {"currency": currency, "day": day}, values)  # type: ignore[arg-type]


Segment = tuple[int, int | None, Fraction]  # valid_from, valid_to (exclusive), amount


def customer_segments(spans: list[SubscriptionSpan]) -> list[Segment]:
    """A customer's MRR as disjoint segments of positive amount, equal neighbours merged.

    The customer's MRR at ``t`` (the sum of ``monthly_at(t)`` of its spans) only
    changes at a span's start (``created + 1``), a change (``when + 1``) or its end
    (``ended + 1``): evaluated at each such point, it holds until the next one.
    """
    points: set[int] = set()
    for span in spans:
        points.add(span.created + 1)
        points.update(when + 1 for when, _ in span.changes)
        if span.ended is not None:
            points.add(span.ended + 1)
    ordered = sorted(points)
    segments: list[Segment] = []
    for i, point in enumerate(ordered):
        amount = sum((span.monthly_at(point) for span in spans), Fraction(0))
        until = ordered[i + 1] if i + 1 < len(ordered) else None
        if amount <= 0:
            continue
        if segments and segments[-1][1] == point and segments[-1][2] == amount:
            segments[-1] = (segments[-1][0], until, amount)
        else:
            segments.append((point, until, amount))
    return segments


def paid_from(spans: list[SubscriptionSpan]) -> int | None:
    """The first instant ``t`` at which some span's ``paid_before(t)`` holds."""
    candidates = []
    for span in spans:
        if span.monthly > 0:
            candidates.append(span.created + 1)
        candidates.extend(max(span.created, when) + 1 for when, a in span.changes if a > 0)
    return min(candidates) if candidates else None


_SUBSCRIPTION_COLUMNS = (
    Subscription.stripe_id,
    Subscription.customer_id,
    Subscription.currency,
    Subscription.tier,
    Subscription.unit_amount,
    Subscription.interval,
    Subscription.interval_count,
    Subscription.status,
    Subscription.stripe_created,
    Subscription.source_time,
    Subscription.ended_at,
    Subscription.canceled_at,
)


def customer_spans(
    session: Session, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], list[SubscriptionSpan]]:
    """The revenue spans (docs/METRICS.md) of these (currency, customer)s, by indexed reads."""
    customers = {customer for _, customer in keys}
    wanted = set(keys)
    rows = [
        row
        for row in session.execute(
            select(*_SUBSCRIPTION_COLUMNS).where(
                Subscription.customer_id.in_(customers),
                Subscription.status.not_in(NOT_REVENUE_STATUSES),
            )
        )
        if (row.currency, row.customer_id) in wanted
    ]
    history = price_history(session, [row.stripe_id for row in rows]) if rows else {}
    spans: dict[tuple[str, str], list[SubscriptionSpan]] = {key: [] for key in keys}
    for row in rows:
        span = span_of(row, history.get(row.stripe_id, []))
        if span.monthly > 0 or any(a > 0 for _, a in span.changes):
            spans[(row.currency, row.customer_id)].append(span)
    return spans


def refresh_customers(session: Session, keys: Iterable[tuple[str, str]]) -> set[tuple[str, int]]:
    """Recompute these customers' MRR segments; the (currency, day)s of ``mrr_daily`` touched."""
    keys = sorted(set(keys))
    days: set[tuple[str, int]] = set()
    if not keys:
        return days
    spans = customer_spans(session, keys)
    month_deltas = months.new_deltas()
    for currency, customer in keys:
        where = (MrrSegment.currency == currency) & (MrrSegment.customer_id == customer)
        old: list[Segment] = []
        for start, end, num, den in session.execute(
            select(
                MrrSegment.valid_from,
                MrrSegment.valid_to,
                MrrSegment.amount_num,
                MrrSegment.amount_den,
            ).where(where)
        ):
            old.append((int(start), None if end is None else int(end), Fraction(num, den)))
            days.add((currency, day_of(start)))
            if end is not None:
                days.add((currency, day_of(end)))
        customer_where = (MrrCustomer.currency == currency) & (MrrCustomer.customer_id == customer)
        old_paid_from = session.scalar(select(MrrCustomer.paid_from).where(customer_where))
        months.customer_months(currency, old, old_paid_from, month_deltas, -1)
        session.execute(delete(MrrSegment).where(where))
        session.execute(delete(MrrCustomer).where(customer_where))
        found = spans.get((currency, customer), [])
        new = customer_segments(found)
        first = paid_from(found)
        months.customer_months(currency, new, first, month_deltas, 1)
        rows: list[dict[str, Any]] = []
        for start, end, amount in new:
            days.add((currency, day_of(start)))
            if end is not None:
                days.add((currency, day_of(end)))
            rows.append(
                {
                    "currency": currency,
                    "customer_id": customer,
                    "valid_from": start,
                    "valid_to": end,
                    "amount_num": amount.numerator,
                    "amount_den": amount.denominator,
                }
            )
        if rows:
            session.execute(insert(MrrSegment), rows)
        if first is not None:
            session.execute(
                insert(MrrCustomer),
                {"currency": currency, "customer_id": customer, "paid_from": first},
            )
    months.apply(session, month_deltas)
    return days


def refresh_mrr_day(session: Session, currency: str, day: int) -> None:
    """Recompute ``mrr_daily`` of one (currency, day) from the segments."""
    figures: dict[int, dict[str, int]] = defaultdict(
        lambda: {"started": 0, "ended": 0, "started_num": 0, "ended_num": 0}
    )
    for column, count, total in (
        (MrrSegment.valid_from, "started", "started_num"),
        (MrrSegment.valid_to, "ended", "ended_num"),
    ):
        for den, n, num in session.execute(
            select(MrrSegment.amount_den, func.count(), func.sum(MrrSegment.amount_num))
            .where(MrrSegment.currency == currency, _in_day(column, day))
            .group_by(MrrSegment.amount_den)
        ):
            figures[int(den)][count] = int(n)
            figures[int(den)][total] = int(num)
    session.execute(delete(MrrDaily).where(MrrDaily.currency == currency, MrrDaily.day == day))
    if figures:
        session.execute(
            insert(MrrDaily),
            [
                {"currency": currency, "day": day, "amount_den": den, **values}
                for den, values in figures.items()
            ],
        )


def refresh_tier_day(session: Session, tier: str, status: str, day: int) -> None:
    """Recompute one (tier, status, day) of ``subscription_daily`` from the mirror."""
    which = (
        (Subscription.tier.is_(None) | (Subscription.tier == OTHER_TIER))
        if tier == OTHER_TIER
        else Subscription.tier == tier
    )
    count, canceled = session.execute(
        select(
            func.count(),
            func.count().filter(
                Subscription.canceled_at.is_not(None) | Subscription.ended_at.is_not(None)
            ),
        ).where(which, Subscription.status == status, _in_day(Subscription.stripe_created, day))
    ).one()
    _upsert(
        session,
        SubscriptionDaily.__table__,  # type: ignore[arg-type]
        {"tier": tier, "status": status, "day": day},
        {"subscriptions": int(count), "canceled": int(canceled)},
    )


def _customers_of(session: Session, subscription_ids: set[str]) -> set[tuple[str, str]]:
    if not subscription_ids:
        return set()
    return {
        (currency, customer)
        for customer, currency in session.execute(
            select(Subscription.customer_id, Subscription.currency).where(
                Subscription.stripe_id.in_(subscription_ids)
            )
        )
    }


def refresh(session: Session) -> None:
    """Recompute every key the session's transaction touched, in that transaction."""
    if not session.info.get(PENDING) and not session.new and not session.dirty:
        return
    session.flush()  # notes the keys of what is still unflushed
    keys = session.info.get(PENDING)
    if not keys:
        return
    session.info[PENDING] = Pending()
    customers = keys.customers | _customers_of(session, keys.subscriptions)
    _lock(session, (f"analytics:mrr:{c}:{customer}" for c, customer in customers))
    mrr_days = refresh_customers(session, customers)
    day_keys = [
        (kind, currency, day) for kind, found in keys.days.items() for currency, day in found
    ]
    _lock(
        session,
        [f"analytics:{kind}:{c}:{day}" for kind, c, day in day_keys]
        + [f"analytics:mrrday:{c}:{day}" for c, day in mrr_days]
        + [f"analytics:tier:{tier}:{status}:{day}" for tier, status, day in keys.tiers],
    )
    for kind, currency, day in sorted(day_keys):
        refresh_day(session, kind, currency, day)
    for tier, status, day in sorted(keys.tiers):
        refresh_tier_day(session, tier, status, day)
    for currency, day in sorted(mrr_days):
        refresh_mrr_day(session, currency, day)


# --- rebuilding everything ------------------------------------------------------------


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def rebuild(
    sessions: sessionmaker[Session],
    *,
    since: int | None = None,
    batch: int = 500,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, int]:
    """Recompute every rollup (or those of days from ``since`` on) from mirror and inbox.

    One transaction per batch of keys; memory is bounded by the batch. The
    subscriptions' customers are recomputed whole (a customer's MRR history is
    one unit); ``since`` limits the day rollups, and the customers to those with
    a subscription created, ended or changed since then.
    """
    report = {"days": 0, "customers": 0}
    lower = day_of(since) if since is not None else None
    day_sources: list[tuple[str, Any, Any]] = [
        (PAYMENTS, Payment.currency, Payment.stripe_created),
        (REFUNDS, Refund.currency, Refund.stripe_created),
        (DISPUTES_OPENED, Dispute.currency, Dispute.stripe_created),
        (SUBSCRIPTIONS_NEW, Subscription.currency, Subscription.stripe_created),
    ]
    with sessions() as session:
        keys: list[tuple[str, str, int]] = []
        for kind, currency, created in day_sources:
            day = created - created % DAY
            query = select(currency, day).distinct()
            if lower is not None:
                query = query.where(created >= lower)
            keys.extend((kind, c, int(d)) for c, d in session.execute(query))
        closed = select(Dispute.currency, Dispute.closed_at).where(Dispute.closed_at.is_not(None))
        if lower is not None:
            closed = closed.where(Dispute.closed_at >= datetime.fromtimestamp(lower, UTC))
        closed_days = {(c, day_of(unix(at))) for c, at in session.execute(closed) if at}
        keys.extend((DISPUTES_CLOSED, c, d) for c, d in closed_days)
        customer_query = select(Subscription.currency, Subscription.customer_id).distinct()
        if lower is not None:
            customer_query = customer_query.where(
                (Subscription.source_time >= lower) | (Subscription.stripe_created >= lower)
            )
        customers = sorted(
            {(str(c), str(customer)) for c, customer in session.execute(customer_query)}
        )
        born = Subscription.stripe_created
        tier_query = select(
            func.coalesce(Subscription.tier, OTHER_TIER), Subscription.status, born - born % DAY
        ).distinct()
        if lower is not None:
            tier_query = tier_query.where(born >= lower)
        tiers = sorted({(str(t), str(s), int(d)) for t, s, d in session.execute(tier_query)})
        if lower is None:
            session.execute(delete(SubscriptionDaily))
            # Everything is recomputed: segments of customers gone from the mirror go too.
            session.execute(delete(MrrSegment))
            session.execute(delete(MrrCustomer))
            session.execute(delete(MrrDaily))
            session.execute(delete(MrrMonth))  # refilled by the customers' recomputes
            session.execute(delete(DailyRollup))
            session.commit()
    total = len(keys) + len(tiers) + len(customers)
    done = 0
    for chunk in _batches(sorted(keys), batch):
        with sessions() as session, session.begin():
            for kind, currency, day in chunk:
                refresh_day(session, kind, currency, day)
        done += len(chunk)
        report["days"] += len(chunk)
        if progress is not None:
            progress("days", done, total)
    for tier_chunk in _batches(tiers, batch):
        with sessions() as session, session.begin():
            for tier, status, day in tier_chunk:
                refresh_tier_day(session, tier, status, day)
        done += len(tier_chunk)
        report["days"] += len(tier_chunk)
        if progress is not None:
            progress("tiers", done, total)
    mrr_days: set[tuple[str, int]] = set()  # a few per currency and day: bounded
    for chunk in _batches(customers, batch):
        with sessions() as session, session.begin():
            mrr_days |= refresh_customers(session, chunk)
        done += len(chunk)
        report["customers"] += len(chunk)
        if progress is not None:
            progress("customers", done, total)
    for chunk in _batches(sorted(mrr_days), batch):
        with sessions() as session, session.begin():
            for currency, day in chunk:
                refresh_mrr_day(session, currency, day)
    return report


# --- filling an upgraded database -----------------------------------------------------

# Above this many mirror rows a migration leaves the fill to `paydesk analytics rebuild`.
BACKFILL_LIMIT = 20_000
_MIRROR_TABLES = ("payments", "refunds", "disputes", "subscriptions")


def backfill_small_database(connection: Any) -> str:
    """Fill the rollups of an upgraded database, from a migration; says what it did.

    ``empty`` (nothing to fill), ``too_large`` (told to run the rebuild), ``deferred``
    (a later migration adds a table today's rebuild writes, and fills them then) or
    ``rebuilt``. The rebuild is today's code, so it runs only once every table it
    writes exists: a migration in the middle of the chain must not depend on the
    schema of the last one.
    """
    rows = sum(
        int(connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)  # noqa: S608
        for table in _MIRROR_TABLES
    )
    if rows == 0:
        return "empty"
    if rows > BACKFILL_LIMIT:
        print(
            f"analytics rollups: {rows} mirror rows; run `paydesk analytics rebuild` now "
            "(metrics read empty rollups until then)"
        )
        return "too_large"
    present = set(inspect(connection).get_table_names())
    written = (DailyRollup, SubscriptionDaily, MrrSegment, MrrCustomer, MrrDaily, MrrMonth)
    if any(str(model.__tablename__) not in present for model in written):
        return "deferred"
    rebuild(sessionmaker(bind=connection, join_transaction_mode="create_savepoint"))
    return "rebuilt"
