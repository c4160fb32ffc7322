"""Render the Admin and billing APIs' OpenAPI document as Markdown (docs/API/ADMIN_API.md)."""

from __future__ import annotations

from typing import Any

from paydesk.settings import load_settings

API_PREFIXES = ("/api/admin", "/api/billing")
HEADER = """# Paydesk Admin API and billing API

Generated from the OpenAPI document by `paydesk docs api`; do not edit by hand
(a test keeps this file in sync). The live document is served at
`/openapi.json` (and browsable at `/docs` in development).

- Amounts are integers in the currency's minor units (cents; whole yen for JPY).
- Every error has the shape
  `{"error": {"code", "message", "field", "request_id", …}}`; Stripe-related
  errors add `stripe_request_id` and, for declines, `decline_code`.
- Lists are newest first; pass a page's `next_cursor` as `cursor` for the next.
- Mutating calls accept an `Idempotency-Key` header: the same key gives the
  same single result (one payment, one refund).
- The Admin API (`/api/admin`) takes an admin API token as
  `Authorization: Bearer pdk_…` (created in the console under Access, shown
  once); each route needs a permission of the token's role, see
  `docs/ACCESS.md`. The billing API (`/api/billing`) takes the app's JWT as
  `Authorization: Bearer <token>`.
"""


def _ref_name(schema: dict[str, Any]) -> str | None:
    ref = schema.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else None


def _type_of(schema: dict[str, Any]) -> str:
    if name := _ref_name(schema):
        return name
    if "anyOf" in schema:
        return " or ".join(_type_of(part) for part in schema["anyOf"])
    if "enum" in schema:
        return " or ".join(f"`{value}`" for value in schema["enum"])
    if "const" in schema:
        return f"`{schema['const']}`"
    if schema.get("type") == "array":
        return f"list of {_type_of(schema.get('items', {}))}"
    return str(schema.get("type", "object"))


def _constraints(schema: dict[str, Any]) -> str:
    parts = []
    for key, label in (
        ("pattern", "pattern"),
        ("minimum", "≥"),
        ("exclusiveMinimum", ">"),
        ("maximum", "≤"),
        ("maxLength", "max length"),
        ("minLength", "min length"),
        ("default", "default"),
    ):
        if key in schema:
            parts.append(f"{label} `{schema[key]}`")
    for part in schema.get("anyOf", []):
        if part.get("type") != "null":
            parts += [c for c in [_constraints(part)] if c]
    return "; ".join(parts)


def _schema_table(name: str, components: dict[str, Any]) -> list[str]:
    schema = components.get(name, {})
    properties = schema.get("properties", {})
    if not properties:
        return []
    required = set(schema.get("required", []))
    lines = [f"`{name}`:", "", "| field | type | required | notes |", "|---|---|---|---|"]
    for field, spec in properties.items():
        notes = " ".join(filter(None, [spec.get("description", ""), _constraints(spec)]))
        lines.append(
            f"| `{field}` | {_type_of(spec)} | {'yes' if field in required else 'no'} "
            f"| {notes.replace('|', '/')} |"
        )
    return [*lines, ""]


def render_markdown(openapi: dict[str, Any]) -> str:
    """Markdown for every Admin and billing API operation in ``openapi``."""
    components = openapi.get("components", {}).get("schemas", {})
    lines = [HEADER]
    for path, operations in openapi["paths"].items():
        if not path.startswith(API_PREFIXES):
            continue
        for method, operation in operations.items():
            lines += [
                f"## {method.upper()} `{path}`",
                "",
                f"**{operation.get('summary', '')}**",
                "",
            ]
            if description := operation.get("description"):
                lines += [description.strip(), ""]
            parameters = operation.get("parameters", [])
            if parameters:
                lines += ["| parameter | in | type | required | notes |", "|---|---|---|---|---|"]
                for parameter in parameters:
                    schema = parameter.get("schema", {})
                    notes = " ".join(
                        filter(None, [parameter.get("description", ""), _constraints(schema)])
                    )
                    lines.append(
                        f"| `{parameter['name']}` | {parameter['in']} | {_type_of(schema)} "
                        f"| {'yes' if parameter.get('required') else 'no'} "
                        f"| {notes.replace('|', '/')} |"
                    )
                lines.append("")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body and (name := _ref_name(body.get("schema", {}))):
                lines += ["Request body:", "", *_schema_table(name, components)]
            lines.append("Responses:")
            lines.append("")
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {}).get("application/json", {})
                model = _type_of(content.get("schema", {})) if content else ""
                suffix = f" → {model}" if model and model != "object" else ""
                lines.append(f"- `{status}` {response.get('description', '')}{suffix}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def admin_api_markdown() -> str:
    """The Markdown of the development app's API (where the Admin API is mounted)."""
    from paydesk.web import create_app

    settings = load_settings({"PAYDESK_DATABASE_URL": "sqlite://"})
    return render_markdown(create_app(settings).openapi())
