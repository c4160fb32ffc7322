"""Form parsing round-trips whatever stripe-python encodes (property-based)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given
from hypothesis import strategies as st
from stripe._encode import _api_encode

from paydesk_sandbox.errors import StripeError
from paydesk_sandbox.params import Params, parse_form

keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8)
leaves = st.one_of(st.text(max_size=12), st.integers(-(10**9), 10**9), st.booleans())
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, min_size=1, max_size=4),
        st.dictionaries(keys, children, min_size=1, max_size=4),
    ),
    max_leaves=20,
)


def _as_wire(value: Any) -> Any:
    """What the server sees: every leaf a string, as the SDK writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return [_as_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_wire(v) for k, v in value.items()}
    return value


def _fold_booleans(value: Any) -> Any:
    """The SDK spells booleans inside arrays "True"/"False" (Params.boolean accepts
    both spellings), so compare booleans case-insensitively."""
    if isinstance(value, list):
        return [_fold_booleans(v) for v in value]
    if isinstance(value, dict):
        return {k: _fold_booleans(v) for k, v in value.items()}
    return value.lower() if value in ("True", "False") else value


@given(st.dictionaries(keys, values, min_size=1, max_size=5))
def test_sdk_encoding_round_trips(params: dict[str, Any]) -> None:
    raw = urlencode(list(_api_encode(params)))
    assert _fold_booleans(parse_form(raw)) == _fold_booleans(_as_wire(params))


def test_typed_accessors() -> None:
    p = Params(parse_form("amount=12&confirm=true&card[exp_month]=8&expand[]=a&expand[]=b"))
    assert p.integer("amount") == 12
    assert p.boolean("confirm") is True
    card = p.sub("card")
    assert card is not None
    assert card.integer("exp_month") == 8
    assert p.strings("expand") == ["a", "b"]
    with pytest.raises(StripeError) as info:
        Params(parse_form("card[exp_month]=x")).sub("card").integer("exp_month")  # type: ignore[union-attr]
    assert info.value.param == "card[exp_month]"
    with pytest.raises(StripeError) as info:
        Params({}).required_string("customer")
    assert info.value.code == "parameter_missing"


def test_metadata_merge() -> None:
    current = {"a": "1", "b": "2"}
    assert Params(parse_form("metadata[b]=&metadata[c]=3")).metadata(current) == {
        "a": "1",
        "c": "3",
    }
    assert Params(parse_form("metadata=")).metadata(current) == {}
    assert Params({}).metadata(current) == current
