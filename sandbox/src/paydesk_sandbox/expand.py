"""``expand[]`` as Stripe does it.

A path names properties from the response down, up to four levels
(``data.customer.invoice_settings.default_payment_method``). At each level:

- an **id** of a stored object becomes that object (found by id, whatever its type);
  ``null`` stays ``null`` (an unset expandable property);
- an **array of ids** becomes an array of objects, element by element, and an empty
  array stays empty (``invoice.discounts``, ``lines.data.discounts``);
- a **list object** or an **array of objects** is walked through: ``data.customer``
  expands ``customer`` on every element;
- an **includable** property, absent from the default shape (``customer.sources``,
  ``price.currency_options``, ``invoice.confirmation_secret``), is produced by the
  function registered with ``Router.expandable(object_type, field)``.

Which properties are expandable is Stripe's ``x-expandableFields``: ``EXPANDABLE``
holds their names (a test checks it against the pinned SDK, which types exactly those
properties as ``ExpandableField``). Hashes and lists are walked through whatever
their name (``invoice_settings.default_payment_method``, ``lines.data.discounts``).
Anything else is refused with Stripe's own error, ``This property cannot be expanded
(<path>).``: properties that are not there, ids of properties Stripe doesn't expand
(``id``), scalars (``amount``, ``status``) and unset non-expandable ones
(``invoice_settings.footer``). Expansion never changes the stored object.
"""

from __future__ import annotations

from typing import Any

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.state import SandboxState

Json = dict[str, Any]
MAX_DEPTH = 4

# Names of the properties Stripe expands on the objects a billing integration meets
# (from x-expandableFields in Stripe's OpenAPI spec).
EXPANDABLE = frozenset(
    {
        "account",
        "account_tax_ids",
        "application",
        "application_fee",
        "balance_transaction",
        "charge",
        "coupon",
        "credit_balance_transaction",
        "customer",
        "default_payment_method",
        "default_price",
        "default_source",
        "destination",
        "discount",
        "discounts",
        "failure_balance_transaction",
        "invoice",
        "invoice_item",
        "latest_attempt",
        "latest_charge",
        "latest_invoice",
        "latest_revision",
        "mandate",
        "on_behalf_of",
        "payment_intent",
        "payment_method",
        "payment_record",
        "pending_setup_intent",
        "price",
        "product",
        "promotion_code",
        "review",
        "schedule",
        "setup_attempt",
        "setup_intent",
        "shipping_rate",
        "single_use_mandate",
        "source",
        "source_transfer",
        "source_transfer_reversal",
        "subscription",
        "subscription_item",
        "tax_code",
        "test_clock",
        "transfer",
        "transfer_reversal",
    }
)


def expand(state: SandboxState, obj: Json, paths: list[str]) -> Json:
    """A copy of ``obj`` with every path in ``paths`` expanded (obj is not changed)."""
    for path in paths:
        parts = path.split(".")
        if len(parts) > MAX_DEPTH:
            raise invalid_request(
                f"You cannot expand more than {MAX_DEPTH} levels of a property. Property: {path}",
                param="expand",
            )
        obj = _expand(state, obj, parts, path)
    return obj


def _expand(state: SandboxState, obj: Json, parts: list[str], path: str) -> Json:
    head, rest = parts[0], parts[1:]
    expander = state.expanders.get((str(obj.get("object")), head))
    out = dict(obj)
    if expander is not None:
        out[head] = _value(state, expander(state, obj), rest, path, True)
    elif head in obj:
        out[head] = _value(state, obj[head], rest, path, head in EXPANDABLE)
    else:
        raise _cannot(path)
    return out


def _value(state: SandboxState, value: Any, rest: list[str], path: str, expandable: bool) -> Any:
    """``value`` expanded: an id becomes its object (if the property is expandable),
    arrays element by element, then the rest of the path applies to the result."""
    if isinstance(value, list):
        if not expandable and not rest:
            raise _cannot(path)
        return [_value(state, v, rest, path, expandable) for v in value]
    if value is None:
        if not expandable and not rest:
            raise _cannot(path)
        return None
    if isinstance(value, str) and expandable:
        found = state.find(value)
        if found is None:
            raise _cannot(path)
        value = found
    if not isinstance(value, dict) or (not expandable and not rest):
        raise _cannot(path)
    if rest:
        return _expand(state, value, rest, path)
    return value


def _cannot(path: str) -> Exception:
    return invalid_request(f"This property cannot be expanded ({path}).", param="expand")
