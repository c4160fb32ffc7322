"""The rest of Stripe's surface a billing integration touches: lists the sandbox holds
nothing for.

Stripe answers these routes for every account; a consumer that syncs everything it
knows (dj-stripe lists ~40 kinds of object) must get a well-formed, empty list, not
"Unrecognized request URL". Retrieving one of their objects is a 404 ``No such …``
(there are none), and creating one is a 400 naming the resource as not supported by
the sandbox. Connect is not emulated: ``GET /v1/accounts`` is empty (the platform's
own account is ``GET /v1/account``, in ``balance``).
"""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from paydesk_sandbox.errors import invalid_request, resource_missing
from paydesk_sandbox.listing import paginate
from paydesk_sandbox.resources.balance import ACCOUNT_ID, retrieve_account
from paydesk_sandbox.resources.customer_lookup import get_customer
from paydesk_sandbox.routing import Ctx, Handler, Router

Json = dict[str, Any]
router = Router()

# (collection path, what one object is called in Stripe's "No such …" errors).
# Each gets GET list (empty), GET {id} (404) and POST create (not supported).
EMPTY_COLLECTIONS: tuple[tuple[str, str], ...] = (
    ("/v1/accounts", "account"),
    ("/v1/application_fees", "application fee"),
    ("/v1/apple_pay/domains", "apple pay domain"),
    ("/v1/apps/installs", "install"),
    ("/v1/billing/alerts", "alert"),
    ("/v1/billing/credit_balance_transactions", "credit balance transaction"),
    ("/v1/billing/credit_grants", "credit grant"),
    ("/v1/billing/feedback_options", "feedback option"),
    ("/v1/billing/meters", "billing meter"),
    ("/v1/billing_portal/configurations", "configuration"),
    ("/v1/checkout/sessions", "checkout.session"),
    ("/v1/climate/orders", "order"),
    ("/v1/climate/products", "product"),
    ("/v1/climate/suppliers", "supplier"),
    ("/v1/country_specs", "country spec"),
    ("/v1/credit_notes", "credit note"),
    ("/v1/entitlements/active_entitlements", "active entitlement"),
    ("/v1/entitlements/features", "feature"),
    ("/v1/exchange_rates", "exchange rate"),
    ("/v1/file_links", "file link"),
    ("/v1/financial_connections/accounts", "financial connections account"),
    ("/v1/forwarding/requests", "forwarding request"),
    ("/v1/identity/verification_reports", "verification report"),
    ("/v1/identity/verification_sessions", "verification session"),
    ("/v1/invoice_rendering_templates", "invoice rendering template"),
    ("/v1/issuing/authorizations", "issuing authorization"),
    ("/v1/issuing/cardholders", "cardholder"),
    ("/v1/issuing/cards", "issuing card"),
    ("/v1/issuing/disputes", "issuing dispute"),
    ("/v1/issuing/personalization_designs", "personalization design"),
    ("/v1/issuing/physical_bundles", "physical bundle"),
    ("/v1/issuing/transactions", "issuing transaction"),
    ("/v1/payment_links", "payment link"),
    ("/v1/payment_method_configurations", "payment method configuration"),
    ("/v1/payment_method_domains", "payment method domain"),
    ("/v1/payouts", "payout"),
    ("/v1/payment_records", "payment record"),
    ("/v1/plans", "plan"),
    ("/v1/product_catalog/trial_offers", "trial offer"),
    ("/v1/quotes", "quote"),
    ("/v1/radar/early_fraud_warnings", "early fraud warning"),
    ("/v1/radar/value_list_items", "value list item"),
    ("/v1/radar/value_lists", "value list"),
    ("/v1/reporting/report_runs", "report run"),
    ("/v1/reporting/report_types", "report type"),
    ("/v1/reviews", "review"),
    ("/v1/setup_attempts", "setup attempt"),
    ("/v1/shipping_rates", "shipping rate"),
    ("/v1/sigma/scheduled_query_runs", "scheduled query run"),
    ("/v1/subscription_schedules", "subscription schedule"),
    ("/v1/tax/registrations", "registration"),
    ("/v1/tax_codes", "tax code"),
    ("/v1/tax_ids", "tax id"),
    ("/v1/tax_rates", "tax rate"),
    ("/v1/terminal/configurations", "configuration"),
    ("/v1/terminal/locations", "location"),
    ("/v1/terminal/readers", "reader"),
    ("/v1/topups", "topup"),
    ("/v1/transfers", "transfer"),
    ("/v1/treasury/financial_accounts", "financial account"),
)

# Lists under an object the sandbox may hold: (path, type and label of the parent).
# The parent must exist (404 otherwise); the list is empty.
EMPTY_SUBLISTS: tuple[tuple[str, str], ...] = (
    ("/v1/accounts/{parent}/capabilities", "account"),
    ("/v1/accounts/{parent}/external_accounts", "account"),
    ("/v1/accounts/{parent}/persons", "account"),
    ("/v1/application_fees/{parent}/refunds", "application fee"),
    ("/v1/checkout/sessions/{parent}/line_items", "checkout.session"),
    ("/v1/credit_notes/{parent}/lines", "credit note"),
    ("/v1/customers/{parent}/balance_transactions", "customer"),
    ("/v1/customers/{parent}/cash_balance_transactions", "customer"),
    ("/v1/customers/{parent}/sources", "customer"),
    ("/v1/customers/{parent}/tax_ids", "customer"),
    ("/v1/payment_links/{parent}/line_items", "payment link"),
    ("/v1/products/{parent}/features", "product"),
    ("/v1/quotes/{parent}/computed_upfront_line_items", "quote"),
    ("/v1/quotes/{parent}/line_items", "quote"),
    ("/v1/transfers/{parent}/reversals", "transfer"),
)


def not_supported(resource: str, ctx: Ctx) -> Exception:
    """The 400 for creating something the sandbox does not emulate."""
    return invalid_request(
        f"Creating {resource} is not supported by the sandbox ({ctx.method} {ctx.url_path} "
        "is a Stripe route it does not emulate).",
    )


def _plural(path: str) -> str:
    """What a collection path holds, in words: ``/v1/tax_rates`` -> ``tax rates``."""
    return path.rstrip("/").rsplit("/", 1)[1].replace("_", " ")


def _list_empty(ctx: Ctx) -> Json:
    return paginate(ctx, [])


def _no_such(label: str) -> Handler:
    def retrieve(ctx: Ctx) -> Json | Response:
        raise resource_missing(label, ctx.path["id"])

    return retrieve


def _refuse_create(label: str) -> Handler:
    def create(ctx: Ctx) -> Json | Response:
        raise not_supported(label, ctx)

    return create


def _parent_exists(ctx: Ctx, label: str) -> None:
    parent = ctx.path["parent"]
    if label == "customer":
        get_customer(ctx.state, parent)
    elif label == "product":
        ctx.state.get("product", parent, label="product")
    elif label == "account":
        if parent != ACCOUNT_ID:
            raise resource_missing("account", parent)
    else:  # the sandbox holds none of these parents
        raise resource_missing(label, parent)


def _sublist(label: str) -> Handler:
    def list_children(ctx: Ctx) -> Json | Response:
        _parent_exists(ctx, label)
        return paginate(ctx, [])

    return list_children


for _path, _label in EMPTY_COLLECTIONS:
    # params=None: these take filters the sandbox has nothing to apply them to.
    router.list(_path, params=None)(_list_empty)
    router.post(_path, params=None)(_refuse_create(_plural(_path)))
    if _path != "/v1/accounts":
        router.get(_path + "/{id}", params=None)(_no_such(_label))

for _path, _label in EMPTY_SUBLISTS:
    router.list(_path, params=None)(_sublist(_label))
    router.post(_path, params=None)(_refuse_create(_plural(_path)))


@router.get("/v1/accounts/{id}")
def retrieve_connected_account(ctx: Ctx) -> Json | Response:
    """The platform's own account by id; no connected accounts exist."""
    if ctx.path["id"] != ACCOUNT_ID:
        raise resource_missing("account", ctx.path["id"])
    return retrieve_account(ctx)
