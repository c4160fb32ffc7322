"""``/v1/files``: uploads (``multipart/form-data``) for dispute evidence.

Stripe takes uploads on ``files.stripe.com``; the SDK sends them to its ``files``
base address, which a client points at the sandbox like the ``api`` one. Only the
``dispute_evidence`` purpose is emulated: PDF, JPEG or PNG (told from the bytes,
not the name: the SDK always sends ``application/octet-stream``), at most 5 MB
(Stripe's limit for that purpose). The bytes are kept as private data, so a
snapshot holds them and ``GET /v1/files/{id}/contents`` serves them back.
"""

from __future__ import annotations

import base64
from typing import Any

from starlette.responses import Response

from paydesk_sandbox.errors import invalid_request
from paydesk_sandbox.listing import created_filter, matching, paginate
from paydesk_sandbox.routing import Ctx, Router
from paydesk_sandbox.state import SandboxState

Json = dict[str, Any]
router = Router()

MAX_EVIDENCE_BYTES = 5 * 1024 * 1024
# (leading bytes, Stripe's ``type``, media type)
_SIGNATURES = (
    (b"%PDF-", "pdf", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "png", "image/png"),
    (b"\xff\xd8\xff", "jpg", "image/jpeg"),
)
SUPPORTED_PURPOSES = frozenset({"dispute_evidence"})


def sniff(data: bytes) -> tuple[str, str] | None:
    """Stripe's ``type`` and the media type of ``data``, or None when not accepted."""
    for magic, kind, media in _SIGNATURES:
        if data.startswith(magic):
            return kind, media
    return None


def get_file(state: SandboxState, file_id: str, *, param: str = "id") -> Json:
    """A file or 404 (``No such file upload``, as Stripe words it)."""
    return state.get("file", file_id, label="file upload", param=param)


@router.post("/v1/files", params={"file", "purpose", "file_link_data", "expand"})
def create_file(ctx: Ctx) -> Json:
    """Upload one file (``file``, a multipart file part) for ``purpose``."""
    purpose = ctx.params.required_string("purpose")
    upload = ctx.files.get("file")
    if upload is None:
        raise invalid_request(
            "Missing required param: file. Send it as a multipart/form-data file part.",
            param="file",
            code="parameter_missing",
        )
    if purpose not in SUPPORTED_PURPOSES:
        raise invalid_request(
            f"The sandbox only supports uploads with purpose 'dispute_evidence', "
            f"not '{purpose[:64]}'.",
            param="purpose",
        )
    if ctx.params.sub("file_link_data") is not None:
        raise invalid_request(
            "File links are not supported by the sandbox.", param="file_link_data"
        )
    if not upload.data:
        raise invalid_request("The uploaded file is empty.", param="file")
    if len(upload.data) > MAX_EVIDENCE_BYTES:
        raise invalid_request(
            "The file is larger than 5 MB, the limit for purpose 'dispute_evidence'.",
            param="file",
        )
    sniffed = sniff(upload.data)
    if sniffed is None:
        raise invalid_request(
            "Files with purpose 'dispute_evidence' must be PDF, JPEG or PNG.", param="file"
        )
    kind, media = sniffed
    file_id = ctx.state.new_id("file")
    obj: Json = {
        "id": file_id,
        "object": "file",
        "created": ctx.now,
        "expires_at": None,
        "filename": upload.filename[:255],
        "links": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/file_links?file={file_id}",
        },
        "purpose": purpose,
        "size": len(upload.data),
        "title": None,
        "type": kind,
        "url": f"{ctx.base_url}/v1/files/{file_id}/contents",
    }
    ctx.state.add(obj)
    private = ctx.state.private_of(file_id)
    private["content_b64"] = base64.b64encode(upload.data).decode()
    private["media_type"] = media
    return obj


@router.get("/v1/files/{id}")
def retrieve_file(ctx: Ctx) -> Json:
    """One file's metadata."""
    return get_file(ctx.state, ctx.path["id"])


@router.get("/v1/files/{id}/contents")
def file_contents(ctx: Ctx) -> Response:
    """The uploaded bytes (Stripe serves them from ``files.stripe.com``)."""
    obj = get_file(ctx.state, ctx.path["id"])
    private = ctx.state.private_of(obj["id"])
    return Response(base64.b64decode(private["content_b64"]), media_type=private["media_type"])


@router.list("/v1/files", params={"purpose", "created"})
def list_files(ctx: Ctx) -> Json:
    """Newest first; filters ``purpose`` and ``created``."""
    items: Any = ctx.state.iter_newest_first("file")
    items = matching(ctx, items, "purpose")
    return paginate(ctx, created_filter(ctx, items))
