"""Compare sandbox objects with Stripe's sample objects (reusable by billing tests)."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

FIXTURES = Path(__file__).resolve().parents[1] / "reference" / "stripe-openapi-fixtures3.json"

# Fields whose value is free-form (keys depend on data, not on the schema) or an
# expandable/polymorphic value whose sample shape differs by design.
FREE_FORM = frozenset(
    {
        "metadata",
        "data",
        "previous_attributes",
        "object",
        "fraud_details",
        "amount_details",
        "payment_method_options",
        "shipping",
        "discount",
        "source",
        "transfer_data",
        "next_action",
        "last_payment_error",
        "last_setup_error",
        "processing",
        "managed_payments",
        "generated_from",
        "wallet",
        "installments",
        "outcome",
        "payment_method_configuration_details",
        "evidence_details",
        "enhanced_evidence",
        "enhanced_eligibility",
    }
)


@functools.cache
def sample(resource: str) -> dict[str, Any]:
    """Stripe's sample object for ``resource`` (e.g. ``"payment_intent"``)."""
    path = FIXTURES
    data: dict[str, Any] = json.loads(path.read_text())["resources"][resource]
    return data


def key_differences(obj: Any, expected: Any, path: str = "") -> list[str]:
    """Keys missing from / extra in ``obj`` versus ``expected``, recursively for
    nested hashes present (non-null) on both sides."""
    if not isinstance(obj, dict) or not isinstance(expected, dict):
        return []
    problems = []
    missing = expected.keys() - obj.keys()
    extra = obj.keys() - expected.keys()
    problems += [f"missing {path}{k}" for k in sorted(missing)]
    problems += [f"extra {path}{k}" for k in sorted(extra)]
    for key in expected.keys() & obj.keys():
        if key in FREE_FORM:
            continue
        problems += key_differences(obj[key], expected[key], f"{path}{key}.")
    return problems


def assert_same_keys(obj: Any, resource: str) -> None:
    """Fail with the list of differences if ``obj`` is not shaped like Stripe's sample."""
    data = obj.to_dict() if hasattr(obj, "to_dict") else obj
    problems = key_differences(data, sample(resource))
    assert not problems, f"{resource}: " + ", ".join(problems)
