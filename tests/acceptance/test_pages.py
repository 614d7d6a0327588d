"""The MCP Gateway Registry's pages (`/`, `/edit/{service_path}`) in a real browser through nginx.

Debian's chromium driven by Playwright: sign in with the form (session cookie and CSRF cookie),
see the servers, edit one, save through the servers API, and read the change back. Screenshots
land in .run/artifacts/pages/.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, async_playwright

from libs.devstack import proc
from tests.acceptance.platform_boot import Platform
from tests.acceptance.rest import Admin, expect

CHROMIUM = "/usr/bin/chromium"
SHOTS = proc.ROOT / ".run" / "artifacts" / "pages"


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian chromium."""
    async with async_playwright() as pw:
        launched = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


async def shot(page: Page, name: str) -> None:
    """A screenshot of the page as a test artifact."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(Path(SHOTS, f"{name}.png")), full_page=True)


async def test_an_operator_signs_in_sees_the_servers_and_edits_one_in_a_browser(
    platform: Platform, api: httpx.AsyncClient, admin: Admin, weather: str, browser: Browser
) -> None:
    context = await browser.new_context(base_url=platform.url)
    page = await context.new_page()
    await page.goto("/")
    assert "/api/v1/auth/login-form" in page.url, f"pages: / without a session: {page.url}"
    await page.fill("input[name=username]", platform.admin.user)
    await page.fill("input[name=password]", platform.admin.password)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{platform.url}/")
    await shot(page, "servers")
    row = page.locator("tr", has_text=weather)
    assert await row.count() == 1, f"pages: the server list: {await page.content()}"

    await row.get_by_role("link", name="edit").click()
    await page.wait_for_url(f"{platform.url}/edit/{weather}")
    text = f"Edited in a browser <b>{secrets.token_hex(3)}</b>"
    await page.fill("input[name=description]", text)
    await shot(page, "edit")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{platform.url}/")
    server = expect(
        await api.get(f"/api/v1/servers/{weather}", headers=admin.headers), 200, "server"
    )
    assert server["description"] == text, "pages: the edit form saved through the API"

    await page.goto(f"/edit/{weather}")
    assert await page.input_value("input[name=description]") == text, "pages: escaped, kept"
    assert await page.locator("b").count() == 0, "pages: a value is never markup"
    await context.close()
