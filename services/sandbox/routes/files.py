"""Workspace files (platform admins): list, read, write, upload, download, mkdir, delete.

Uploads are extracted safely."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import ValidationError
from libs.common.http import json_response, no_content, parse_body
from services.sandbox.context import runtime_of
from services.sandbox.workspace import Workspace

FILES = "/api/v1/sandbox/files"
MAX_UPLOAD_FILES = 20
ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")


class WriteBody(BaseModel):
    """PUT /files/content."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)
    content: str


class PathBody(BaseModel):
    """POST /files/mkdir."""

    model_config = ConfigDict(extra="forbid")
    path: str = Field(min_length=1, max_length=4096)


async def _workspace(request: Request) -> Workspace:
    """Authenticate a platform admin and return the workspace."""
    principal = await authenticate(request)
    require_platform_admin(principal)
    return runtime_of(request).workspace


async def list_files(request: Request) -> Response:
    """Entries of a directory (`path`, default the workspace root)."""
    ws = await _workspace(request)
    path = request.query_params.get("path")
    items = ws.list(path)
    return json_response({"path": path or "", "items": items, "total": len(items)})


async def read_file(request: Request) -> Response:
    """A text file's content."""
    ws = await _workspace(request)
    path = request.query_params.get("path")
    data = ws.read(path)
    try:
        text = data.decode()
    except UnicodeDecodeError:
        raise ValidationError("The file is not UTF-8 text; download it instead.") from None
    return json_response({"path": path, "content": text, "size": len(data)})


async def write_file(request: Request) -> Response:
    """Create or replace a text file."""
    ws = await _workspace(request)
    body = await parse_body(request, WriteBody)
    return json_response(ws.write(body.path, body.content.encode()))


async def download(request: Request) -> Response:
    """A file's bytes."""
    ws = await _workspace(request)
    path = request.query_params.get("path")
    data = ws.read(path)
    name = (path or "file").rsplit("/", 1)[-1].replace('"', "")
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def _flag(request: Request, *names: str) -> bool:
    """A true query flag under any of `names` (`extract`, the mcphubs seed's `auto_extract`)."""
    return any(request.query_params.get(n, "").lower() in ("1", "true", "yes") for n in names)


async def upload(request: Request) -> Response:
    """The raw body as the file `path`, or multipart files into the directory `path`.

    With `extract=true` (or the mcphubs seed's `auto_extract=true`) an archive is unpacked into
    `path` instead, after the zip-slip, link and size checks of Workspace.extract."""
    ws = await _workspace(request)
    path = request.query_params.get("path")
    extract = _flag(request, "extract", "auto_extract")
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await _upload_multipart(request, ws, path, extract)
    data = await request.body()
    if extract:
        name = request.query_params.get("name") or ""
        written = ws.extract(path, name, data)
        return json_response({"path": path or "", "extracted": written}, 201)
    return json_response(ws.write(path, data), 201)


async def _upload_multipart(
    request: Request, ws: Workspace, path: str | None, extract: bool
) -> Response:
    """Each file part into the directory `path` under its own base name.

    An archive is unpacked there instead when `extract` is set."""
    try:
        form = await request.form(
            max_files=MAX_UPLOAD_FILES, max_fields=20, max_part_size=ws.max_file_bytes
        )
    except (MultiPartException, ValueError) as exc:
        raise ValidationError(f"The multipart body does not parse: {exc}") from None
    try:
        files, extracted = await _store_parts(ws, form, path, extract)
    finally:
        await form.close()  # the spooled temporary files, on refusals too
    base = ws.rel(ws.resolve(path, allow_root=True))
    return json_response({"path": base, "files": files, "extracted": extracted}, 201)


async def make_dir(request: Request) -> Response:
    """Create a directory."""
    ws = await _workspace(request)
    body = await parse_body(request, PathBody)
    return json_response(ws.mkdir(body.path), 201)


async def delete(request: Request) -> Response:
    """Delete a file or a directory tree."""
    ws = await _workspace(request)
    ws.delete(request.query_params.get("path"))
    return no_content()


async def _store_parts(
    ws: Workspace, form: FormData, path: str | None, extract: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    """(files written, paths extracted) for the form's file parts."""
    parts = [v for v in form.values() if isinstance(v, UploadFile)]
    if not parts:
        raise ValidationError("The multipart body has no file part.", details={"field": "file"})
    base = ws.rel(ws.resolve(path, allow_root=True))
    files, extracted = [], []
    for part in parts:
        name = PurePosixPath((part.filename or "").replace("\\", "/")).name
        if name in ("", ".", ".."):
            raise ValidationError("A file part needs a file name.", details={"field": "file"})
        data = await part.read()
        if extract and name.lower().endswith(ARCHIVES):
            extracted += ws.extract(base, name, data)
        else:
            files.append(ws.write(f"{base}/{name}" if base else name, data))
    return files, extracted


routes = [
    Route(FILES, list_files, methods=["GET"]),
    Route(FILES, delete, methods=["DELETE"]),
    Route(f"{FILES}/content", read_file, methods=["GET"]),
    Route(f"{FILES}/content", write_file, methods=["PUT"]),
    Route(f"{FILES}/download", download, methods=["GET"]),
    Route(f"{FILES}/upload", upload, methods=["POST"]),
    Route(f"{FILES}/mkdir", make_dir, methods=["POST"]),
]
