"""``multipart/form-data`` request bodies, as the SDK sends file uploads.

Only ``POST /v1/files`` takes one at Stripe. The body is read with a cap (the
announced length is checked before a byte is read, a body without one is counted
as it streams), then parsed: text parts become the form string the rest of the
protocol expects, file parts become :class:`UploadedFile`.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from paydesk_sandbox.errors import StripeError, invalid_request

MiB = 1024 * 1024
MAX_UPLOAD_BYTES = 16 * MiB  # the sandbox's cap on a whole upload body


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part of a multipart body."""

    filename: str
    data: bytes


def is_multipart(request: Request) -> bool:
    """Whether the request body is ``multipart/form-data``."""
    return request.headers.get("content-type", "").lower().startswith("multipart/form-data")


def _too_large() -> StripeError:
    return StripeError(
        413,
        "invalid_request_error",
        f"The request body is larger than the {MAX_UPLOAD_BYTES // MiB} MB the sandbox accepts.",
        param="file",
    )


async def read_multipart(request: Request) -> tuple[str, dict[str, UploadedFile]]:
    """The text fields as a urlencoded string, and the file parts by field name."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > MAX_UPLOAD_BYTES):
        raise _too_large()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise _too_large()
        chunks.append(chunk)
    body = b"".join(chunks)

    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(
        Headers(raw=request.headers.raw), replay(), max_files=4, max_fields=100
    )
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise invalid_request(f"Invalid multipart/form-data body: {exc.message}") from None
    fields: list[tuple[str, str]] = []
    files: dict[str, UploadedFile] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            files[key] = UploadedFile(value.filename or "blob", await value.read())
            await value.close()
        else:
            fields.append((key, value))
    return urlencode(fields), files


def files_fingerprint(files: dict[str, UploadedFile]) -> str:
    """What identifies the uploaded files in an idempotency fingerprint."""
    return "&".join(
        f"{name}={hashlib.sha256(f.data).hexdigest()}" for name, f in sorted(files.items())
    )
