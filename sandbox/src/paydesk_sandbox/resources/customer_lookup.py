"""Finding a customer by id: the one lookup both customers and payment methods need
(kept apart from ``customers`` so ``payment_methods`` can use it without a cycle)."""

from __future__ import annotations

from paydesk_sandbox.errors import resource_missing
from paydesk_sandbox.state import Json, SandboxState


def get_customer(state: SandboxState, customer_id: str, param: str = "id") -> Json:
    """A live customer or 404 ``No such customer: 'cus_…'``."""
    customer = state.store("customer").get(customer_id)
    if customer is None:
        raise resource_missing("customer", customer_id, param=param)
    return customer
