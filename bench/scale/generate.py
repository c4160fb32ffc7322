"""N subscriptions' worth of mirror, webhook inbox and rollups, written by PostgreSQL itself.

Everything is ``INSERT … SELECT … FROM generate_series`` (no row crosses the client),
over 24 months up to ``now``: N customers, N subscriptions over the three tiers
(some yearly, canceled, trialing, past due), 3N ``customer.subscription.*`` events of
about 2 kB, 5N payments, N/20 refunds, N/200 disputes. The rollups are then derived
with GROUP BYs that follow ``paydesk.analytics.rollups`` (one subscription per
customer and no tier change, so a customer's MRR is one segment); ``--verify``
checks them against the from-scratch definitions.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, text
from sqlalchemy.orm import Session

from paydesk.analytics.months import fill

SPAN = 730 * 86_400  # 24 months

MIRROR = [
    (
        "customers",
        """INSERT INTO customers (stripe_id, livemode, stripe_created, source_time, email, name,
            deleted, created_at, updated_at)
        SELECT 'cus_' || g, false, CAST(:t0 AS bigint) + g::bigint * :span / :n, 0,
            'user' || g || '@example.com',
            'User ' || g, false, now(), now()
        FROM generate_series(1, :n) g""",
    ),
    (
        "subscriptions",
        """INSERT INTO subscriptions (stripe_id, livemode, stripe_created, source_time,
            customer_id, status, item_id, price_id, tier, unit_amount, currency, interval,
            interval_count, cancel_at_period_end, canceled_at, ended_at, created_at, updated_at)
        SELECT 'sub_' || g, false, c, c, 'cus_' || g, st, 'si_' || g, 'price_' || tier, tier,
            CASE tier WHEN 'free' THEN 0 WHEN 'premium' THEN 999
                 ELSE CASE WHEN g % 7 = 0 THEN 36000 ELSE 2999 END END,
            'usd', CASE WHEN tier = 'enterprise' AND g % 7 = 0 THEN 'year' ELSE 'month' END, 1,
            false,
            CASE WHEN st = 'canceled' THEN to_timestamp(LEAST(c + (g % 300) * 86400, :now - 60))
            END,
            CASE WHEN st = 'canceled' THEN to_timestamp(LEAST(c + (g % 300) * 86400, :now - 60))
            END,
            now(), now()
        FROM (
            SELECT g, CAST(:t0 AS bigint) + g::bigint * :span / :n AS c,
                (ARRAY['free', 'premium', 'enterprise'])[g % 3 + 1] AS tier,
                CASE WHEN g % 10 = 0 THEN 'canceled' WHEN g % 50 = 1 THEN 'trialing'
                     WHEN g % 50 = 2 THEN 'past_due' ELSE 'active' END AS st
            FROM generate_series(1, :n) g
        ) s""",
    ),
    (
        "stripe_events (3 per subscription)",
        """INSERT INTO stripe_events (event_id, type, api_version, created, livemode, object_id,
            payload, source, received_at, status, attempts, next_attempt_at, processed_at,
            processing_ms, outcome)
        SELECT 'evt_' || s.stripe_id || '_' || k,
            CASE WHEN k = 0 THEN 'customer.subscription.created'
                 ELSE 'customer.subscription.updated' END,
            '2026-10-28.endive', s.stripe_created + k * 60, false, s.stripe_id,
            json_build_object(
                'id', 'evt_' || s.stripe_id || '_' || k, 'object', 'event',
                'type', 'customer.subscription.updated', 'created', s.stripe_created + k * 60,
                'data', json_build_object('object', json_build_object(
                    'id', s.stripe_id, 'object', 'subscription', 'customer', s.customer_id,
                    'status', s.status, 'metadata', json_build_object('note', repeat('x', 1500)),
                    'items', json_build_object('object', 'list', 'data', json_build_array(
                        json_build_object('id', s.item_id, 'price', json_build_object(
                            'id', s.price_id, 'unit_amount', s.unit_amount,
                            'currency', s.currency, 'recurring', json_build_object(
                                'interval', s.interval, 'interval_count', 1)))))))
            )::text,
            'webhook', now(), 'processed', 1, now(),
            to_timestamp(s.stripe_created + k * 60 + 1), 1.0, 'applied'
        FROM subscriptions s CROSS JOIN generate_series(0, 2) k""",
    ),
    (
        "payments (5 per subscription)",
        """INSERT INTO payments (stripe_id, livemode, stripe_created, source_time, customer_id,
            amount, amount_received, amount_refunded, currency, status, capture_method,
            latest_charge_id, failure_code, disputed, created_at, updated_at)
        SELECT 'pi_' || g, false, CAST(:t0 AS bigint) + g::bigint * :span / (5 * :n), 0,
            'cus_' || (g % :n + 1),
            500 + g % 9500, CASE WHEN g % 100 < 85 THEN 500 + g % 9500 ELSE 0 END, 0,
            CASE WHEN g % 10 = 0 THEN 'eur' ELSE 'usd' END,
            CASE WHEN g % 100 < 85 THEN 'succeeded'
                 WHEN g % 100 < 93 THEN 'requires_payment_method'
                 WHEN g % 100 < 97 THEN 'canceled' ELSE 'processing' END,
            'automatic', 'ch_' || g,
            CASE WHEN g % 100 BETWEEN 85 AND 94 THEN 'card_declined' END, false, now(), now()
        FROM generate_series(1, 5 * :n) g""",
    ),
    (
        "refunds (1 per 20 subscriptions)",
        """INSERT INTO refunds (stripe_id, livemode, stripe_created, source_time,
            payment_intent_id, charge_id, amount, currency, status, created_at, updated_at)
        SELECT 're_' || g, false, CAST(:t0 AS bigint) + g::bigint * :span / (:n / 20), 0,
            'pi_' || (g * 100),
            'ch_' || (g * 100), 400, 'usd',
            CASE WHEN g % 25 = 0 THEN 'failed' ELSE 'succeeded' END, now(), now()
        FROM generate_series(1, :n / 20) g""",
    ),
    (
        "disputes (1 per 200 subscriptions)",
        """INSERT INTO disputes (stripe_id, livemode, stripe_created, source_time, charge_id,
            payment_intent_id, amount, currency, status, reason, closed_at, created_at,
            updated_at)
        SELECT 'dp_' || g, false, c, 0, 'ch_' || (g * 1000), 'pi_' || (g * 1000), 1500, 'usd',
            CASE WHEN c > :now - 864000 THEN 'needs_response'
                 WHEN g % 3 = 0 THEN 'lost' ELSE 'won' END, 'fraudulent',
            CASE WHEN c <= :now - 864000 THEN to_timestamp(c + 86400 * (3 + g % 7)) END,
            now(), now()
        FROM (SELECT g, CAST(:t0 AS bigint) + g::bigint * :span / (:n / 200) AS c
              FROM generate_series(1, :n / 200) g) d""",
    ),
]

DAY = "(stripe_created - stripe_created % 86400)"  # replaces DAY_OF_CREATION below
ROLLUPS = [
    (
        "analytics_daily: payments",
        """INSERT INTO analytics_daily SELECT currency, DAY_OF_CREATION,
            count(*), count(*) FILTER (WHERE status = 'succeeded'),
            count(*) FILTER (WHERE status <> 'succeeded' AND failure_code IS NOT NULL),
            coalesce(sum(amount_received) FILTER (WHERE status = 'succeeded'), 0),
            0, 0, 0, 0, 0, 0, 0
        FROM payments GROUP BY 1, 2""",
    ),
    (
        "analytics_daily: refunds",
        """INSERT INTO analytics_daily AS a (currency, day, payments_created, payments_succeeded,
            payments_failed, payments_volume, refunds_created, refunds_succeeded,
            refunds_amount, disputes_opened, disputes_resolved, disputes_resolution_seconds,
            subscriptions_new)
        SELECT currency, DAY_OF_CREATION, 0, 0, 0, 0, count(*),
            count(*) FILTER (WHERE status = 'succeeded'),
            coalesce(sum(amount) FILTER (WHERE status = 'succeeded'), 0), 0, 0, 0, 0
        FROM refunds GROUP BY 1, 2
        ON CONFLICT (currency, day) DO UPDATE SET refunds_created = excluded.refunds_created,
            refunds_succeeded = excluded.refunds_succeeded,
            refunds_amount = excluded.refunds_amount""",
    ),
    (
        "analytics_daily: disputes opened",
        """INSERT INTO analytics_daily (currency, day, payments_created, payments_succeeded,
            payments_failed, payments_volume, refunds_created, refunds_succeeded,
            refunds_amount, disputes_opened, disputes_resolved, disputes_resolution_seconds,
            subscriptions_new)
        SELECT currency, DAY_OF_CREATION, 0, 0, 0, 0, 0, 0, 0, count(*), 0, 0, 0
        FROM disputes GROUP BY 1, 2
        ON CONFLICT (currency, day) DO UPDATE SET disputes_opened = excluded.disputes_opened""",
    ),
    (
        "analytics_daily: disputes resolved",
        """INSERT INTO analytics_daily (currency, day, payments_created, payments_succeeded,
            payments_failed, payments_volume, refunds_created, refunds_succeeded,
            refunds_amount, disputes_opened, disputes_resolved, disputes_resolution_seconds,
            subscriptions_new)
        SELECT currency, e - e % 86400, 0, 0, 0, 0, 0, 0, 0, 0, count(*),
            sum(e - stripe_created), 0
        FROM (SELECT currency, stripe_created, extract(epoch FROM closed_at)::bigint AS e
              FROM disputes WHERE closed_at IS NOT NULL) d GROUP BY 1, 2
        ON CONFLICT (currency, day) DO UPDATE SET
            disputes_resolved = excluded.disputes_resolved,
            disputes_resolution_seconds = excluded.disputes_resolution_seconds""",
    ),
    (
        "analytics_daily: new subscriptions",
        """INSERT INTO analytics_daily (currency, day, payments_created, payments_succeeded,
            payments_failed, payments_volume, refunds_created, refunds_succeeded,
            refunds_amount, disputes_opened, disputes_resolved, disputes_resolution_seconds,
            subscriptions_new)
        SELECT currency, DAY_OF_CREATION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            count(*) FILTER (WHERE status NOT IN ('incomplete', 'incomplete_expired'))
        FROM subscriptions GROUP BY 1, 2
        ON CONFLICT (currency, day) DO UPDATE SET
            subscriptions_new = excluded.subscriptions_new""",
    ),
    (
        "subscription_daily",
        """INSERT INTO subscription_daily
        SELECT coalesce(tier, 'other'), status, DAY_OF_CREATION, count(*),
            count(*) FILTER (WHERE canceled_at IS NOT NULL OR ended_at IS NOT NULL)
        FROM subscriptions GROUP BY 1, 2, 3""",
    ),
    (
        "mrr_segments (one per paying customer: no tier changes)",
        """INSERT INTO mrr_segments
        SELECT currency, customer_id, stripe_created + 1,
            CASE WHEN ended_at IS NOT NULL THEN extract(epoch FROM ended_at)::bigint + 1 END,
            CASE WHEN interval = 'year' THEN unit_amount / 12 ELSE unit_amount END, 1
        FROM subscriptions
        WHERE tier <> 'free' AND status NOT IN ('incomplete', 'incomplete_expired', 'trialing')
            AND (interval <> 'year' OR unit_amount % 12 = 0)""",
    ),
    (
        "mrr_customers",
        """INSERT INTO mrr_customers SELECT currency, customer_id, valid_from
        FROM mrr_segments""",
    ),
    (
        "mrr_daily",
        """INSERT INTO mrr_daily (currency, day, amount_den, started, ended, started_num,
            ended_num)
        SELECT currency, day, amount_den, sum(started), sum(ended), sum(started_num),
            sum(ended_num)
        FROM (
            SELECT currency, valid_from - valid_from % 86400 AS day, amount_den,
                1 AS started, 0 AS ended, amount_num AS started_num, 0 AS ended_num
            FROM mrr_segments
            UNION ALL
            SELECT currency, valid_to - valid_to % 86400, amount_den, 0, 1, 0, amount_num
            FROM mrr_segments WHERE valid_to IS NOT NULL
        ) m GROUP BY 1, 2, 3""",
    ),
]


def generate(
    connection: Connection, n: int, now: int, report: Callable[[str, float], None]
) -> None:
    """Fill the (empty, migrated) database; ``report(step, seconds)`` after each step."""
    import time

    params = {"n": n, "now": now, "t0": now - SPAN, "span": SPAN}
    for name, statement in [*MIRROR, *ROLLUPS]:
        started = time.perf_counter()
        connection.execute(text(statement.replace("DAY_OF_CREATION", DAY)), params)
        report(name, time.perf_counter() - started)
    # The month rows, by the code migration 0008 runs (its time is the migration's),
    # once the planner has statistics for the segments.
    started = time.perf_counter()
    connection.execute(text("ANALYZE"))
    with Session(bind=connection) as session:
        months = fill(session)
        session.flush()
    report(f"mrr_months ({months} months, as migration 0008)", time.perf_counter() - started)
