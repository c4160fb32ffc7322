"""``/v1/test_helpers/test_clocks``: create, retrieve, list, delete, advance.

Advancing is done within the request (the sandbox is fast enough), but the response
still says ``advancing``, as Stripe's does; the stored clock is ``ready`` by the time
the client polls, and ``test_helpers.test_clock.advancing`` / ``.ready`` are emitted.
"""

from __future__ import annotations

from paydesk_sandbox.billing import clock_engine, shapes
from paydesk_sandbox.billing.outbox import emit
from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.listing import paginate
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import Json, SandboxState, clone

router = Router()
TYPE = "test_helpers.test_clock"


def get_clock(state: SandboxState, clock_id: str) -> Json:
    """The clock or a 404 ``No such test_clock``."""
    return state.get(TYPE, clock_id, label="test_clock")


@router.post("/v1/test_helpers/test_clocks", params=("frozen_time", "name"))
def create(ctx: Ctx) -> Json:
    frozen_time = ctx.params.required_integer("frozen_time", minimum=0)
    clock = shapes.test_clock(
        id=ctx.state.new_id("clock"),
        created=ctx.now,
        frozen_time=frozen_time,
        name=ctx.params.string("name"),
    )
    ctx.state.add(clock)
    emit(ctx.state, "test_helpers.test_clock.created", clock)
    return clock


@router.get("/v1/test_helpers/test_clocks/{id}")
def retrieve(ctx: Ctx) -> Json:
    return get_clock(ctx.state, ctx.path["id"])


@router.list("/v1/test_helpers/test_clocks")
def list_clocks(ctx: Ctx) -> Json:
    return paginate(ctx, ctx.state.iter_newest_first(TYPE), "/v1/test_helpers/test_clocks")


@router.delete("/v1/test_helpers/test_clocks/{id}")
def delete(ctx: Ctx) -> Json:
    state = ctx.state
    clock = get_clock(state, ctx.path["id"])
    # Stripe deletes the clock's customers and everything billed to them; deleting a
    # customer here cancels its subscriptions (the customer.deleted listener).
    customers = [c for c in state.store("customer").values() if c.get("test_clock") == clock["id"]]
    for customer in customers:
        _delete_customer(state, customer)
    del state.store(TYPE)[clock["id"]]
    emit(state, "test_helpers.test_clock.deleted", clock)
    return {"id": clock["id"], "object": TYPE, "deleted": True}


def _delete_customer(state: SandboxState, customer: Json) -> None:
    """What DELETE /v1/customers/{id} does (the core's handler needs a request)."""
    del state.store("customer")[customer["id"]]
    state.private_of(customer["id"])["deleted"] = True
    for pm in state.store("payment_method").values():
        if pm["customer"] == customer["id"]:
            pm["customer"] = None
    state.emit("customer.deleted", customer)


@router.post("/v1/test_helpers/test_clocks/{id}/advance", params=("frozen_time",))
def advance(ctx: Ctx) -> Json:
    state = ctx.state
    clock = get_clock(state, ctx.path["id"])
    target = ctx.params.required_integer("frozen_time", minimum=0)
    if target <= clock["frozen_time"]:
        raise invalid_request(
            "The frozen_time must be after the test clock's current frozen time.",
            param="frozen_time",
        )
    limit = clock_engine.shortest_interval_limit(state, clock["id"], int(clock["frozen_time"]))
    if target > limit:
        raise invalid_request(
            "Cannot advance the test clock more than two intervals of its shortest "
            f"subscription ahead (at most {limit}).",
            param="frozen_time",
        )
    clock["status"] = "advancing"
    clock["status_details"] = {"advancing": {"target_frozen_time": target}}
    emit(state, "test_helpers.test_clock.advancing", clock)
    response = clone(clock)
    clock_engine.advance(state, clock, target)
    clock["status"] = "ready"
    clock["status_details"] = {}
    emit(state, "test_helpers.test_clock.ready", clock)
    return response
