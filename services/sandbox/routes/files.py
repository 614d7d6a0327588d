"""Workspace files (platform admins): list, read, write, upload, download, mkdir, delete.

Uploads are extracted safely."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from libs.common.authn import authenticate, require_platform_admin
from libs.common.errors import ValidationError
from libs.common.http import json_response, no_content, parse_body
from services.sandbox.context import runtime_of
from services.sandbox.workspace import Workspace

FILES = "/api/v1/sandbox/files"


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


async def upload(request: Request) -> Response:
    """The raw body as the file `path`; with `extract=true`, an archive unpacked into `path`."""
    ws = await _workspace(request)
    path = request.query_params.get("path")
    data = await request.body()
    if request.query_params.get("extract") in ("1", "true", "yes"):
        name = request.query_params.get("name") or ""
        written = ws.extract(path, name, data)
        return json_response({"path": path or "", "extracted": written}, 201)
    return json_response(ws.write(path, data), 201)


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


routes = [
    Route(FILES, list_files, methods=["GET"]),
    Route(FILES, delete, methods=["DELETE"]),
    Route(f"{FILES}/content", read_file, methods=["GET"]),
    Route(f"{FILES}/content", write_file, methods=["PUT"]),
    Route(f"{FILES}/download", download, methods=["GET"]),
    Route(f"{FILES}/upload", upload, methods=["POST"]),
    Route(f"{FILES}/mkdir", make_dir, methods=["POST"]),
]
