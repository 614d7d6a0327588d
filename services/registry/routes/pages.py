"""The MCP Gateway Registry's two HTML pages, `GET /` and `GET /edit/{service_path}`.

Minimal server-rendered pages until a console exists: the caller's servers, and a form for one
that saves through `PATCH /api/v1/servers/{id}` with the session cookie and the CSRF header the
sign-in page's cookies allow. Every value is escaped; no credential is ever written in a page."""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from libs.common.authn import authenticate, cookies_of
from libs.common.errors import Unauthenticated
from libs.common.principal import Principal
from services.registry import permissions, servers
from services.registry.context import Registry
from services.registry.store import servers as servers_store

SIGN_IN = "/api/v1/auth/login-form"
HEAD = (
    '<!doctype html><html><head><meta charset="utf-8"><title>{title}</title>'
    '<meta name="viewport" content="width=device-width"></head><body>'
)
EDIT_SCRIPT = """<script>
const form = document.getElementById("edit");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  const f = new FormData(form);
  const csrf = document.cookie.split("; ").find((c) => c.startsWith(__CSRF__ + "="));
  const body = {
    display_name: f.get("name"), url: f.get("proxy_pass_url") || null,
    description: f.get("description"), license: f.get("license") || null,
    tags: f.get("tags").split(",").map((t) => t.trim()).filter((t) => t),
    stars: f.get("num_stars") ? Number(f.get("num_stars")) : null,
    is_python: f.get("is_python") === "on",
  };
  if (!body.url) delete body.url;
  const resp = await fetch("/api/v1/servers/" + __ID__, {
    method: "PATCH", credentials: "same-origin",
    headers: {"Content-Type": "application/json",
              "X-CSRF-Token": csrf ? decodeURIComponent(csrf.split("=")[1]) : ""},
    body: JSON.stringify(body),
  });
  if (resp.ok) { window.location = "/"; return; }
  document.getElementById("error").textContent = (await resp.json()).error.message;
});
</script>"""


def _e(value: Any) -> str:
    """HTML-escaped text of a value (empty for None)."""
    return "" if value is None else html.escape(str(value), quote=True)


async def _principal(request: Request) -> Principal | None:
    """The signed-in caller, or None when no valid session or credential came."""
    try:
        return await authenticate(request)
    except Unauthenticated:
        return None


def _to_sign_in(request: Request) -> Response:
    """To the sign-in form, coming back here afterwards."""
    return RedirectResponse(f"{SIGN_IN}?next={quote(request.url.path)}", status_code=303)


async def home(request: Request) -> Response:
    """The servers the caller may read, each with its status, tools and an edit link."""
    principal = await _principal(request)
    if principal is None:
        return _to_sign_in(request)
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        rows = [
            s for s in await servers_store.list_all(conn) if permissions.can(principal, "read", s)
        ]
    lines = [
        f"<tr><td>{_e(s['display_name'] or s['name'])}</td><td>{_e(s['path'])}</td>"
        f"<td>{_e(s['transport'])}</td><td>{'on' if s['enabled'] else 'off'}</td>"
        f"<td>{_e(s['status'])}</td><td>{_e(s['tool_count'])}</td>"
        f'<td><a href="/edit/{_e(quote(s["name"]))}">edit</a></td></tr>'
        for s in sorted(rows, key=lambda r: r["name"])
    ]
    body = (
        HEAD.format(title="Switchboard servers")
        + "<h1>Servers</h1><table><thead><tr><th>name</th><th>path</th><th>transport</th>"
        "<th>enabled</th><th>status</th><th>tools</th><th></th></tr></thead><tbody>"
        + "".join(lines)
        + "</tbody></table></body></html>"
    )
    return HTMLResponse(body)


async def edit(request: Request) -> Response:
    """A form for one server (name, path or id), saved through the servers API."""
    principal = await _principal(request)
    if principal is None:
        return _to_sign_in(request)
    ref = request.path_params["service_path"].strip("/")
    reg: Registry = request.state.registry
    async with reg.pool.acquire() as conn:
        s = await servers.public_view(conn, await servers.readable(conn, principal, ref), principal)
    fields = [
        ("name", "Name", s.get("display_name") or s["name"]),
        ("proxy_pass_url", "Proxy pass URL", s.get("url")),
        ("description", "Description", s.get("description")),
        ("tags", "Tags (comma-separated)", ",".join(s.get("tags") or [])),
        ("num_stars", "Stars", s.get("stars")),
        ("license", "License", s.get("license")),
    ]
    inputs = "".join(
        f'<p><label>{label} <input name="{name}" value="{_e(value)}"></label></p>'
        for name, label, value in fields
    )
    checked = " checked" if s.get("is_python") else ""
    script = EDIT_SCRIPT.replace("__CSRF__", json.dumps(cookies_of(request).csrf)).replace(
        "__ID__", json.dumps(str(s["id"]))
    )
    body = (
        HEAD.format(title=f"Edit {_e(s['name'])}")
        + f'<h1>Edit {_e(s["name"])}</h1><form id="edit">{inputs}'
        f'<p><label><input type="checkbox" name="is_python"{checked}> Python</label></p>'
        f'<p><label>Tools <input name="num_tools" value="{_e(s.get("tool_count"))}" readonly>'
        '</label></p><button type="submit">Save</button> <a href="/">cancel</a>'
        '<p id="error" role="alert"></p></form>' + script + "</body></html>"
    )
    return HTMLResponse(body)


routes = [
    Route("/", home, methods=["GET"]),
    Route("/edit/{service_path:path}", edit, methods=["GET"]),
]
