"""Storing and finding products: what both ``products`` (the routes) and ``prices``
(``product_data``) need, kept apart so neither route module imports the other's."""

from __future__ import annotations

from paydesk_sandbox.billing import shapes
from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.params import Params
from paydesk_sandbox.routing import Ctx
from paydesk_sandbox.state import Json, SandboxState


def get_product(state: SandboxState, product_id: str, param: str = "id") -> Json:
    """The product or a 404 ``No such product``."""
    return state.get("product", product_id, label="product", param=param)


def create_product(ctx: Ctx, data: Json, param_prefix: str = "") -> Json:
    """Store a product built from ``data`` (also used by ``prices.product_data``)."""
    state = ctx.state
    params = Params(data, param_prefix)
    name = params.required_string("name")
    product_id = params.string("id") or state.new_id("prod")
    if product_id in state.store("product"):
        raise invalid_request(f"Product already exists: {product_id}", param="id")
    obj = shapes.product(id=product_id, created=ctx.now, name=name, params=data)
    obj["active"] = params.boolean("active", True)
    obj["shippable"] = params.boolean("shippable")
    obj["metadata"] = params.metadata()
    state.add(obj)
    state.emit("product.created", obj)
    return obj
