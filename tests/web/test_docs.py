"""The API documents render with no network: Swagger UI, ReDoc and their fonts come from Relais."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import expect

from tests.support.live import LiveStack
from tests.web.conftest import OfflineContext, screenshot, sqlite_stack

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The documents need no model: nothing is loaded."""
    live = sqlite_stack(tmp_path_factory)
    yield live
    live.stop()


def test_swagger_ui_renders_the_contract_offline(offline: OfflineContext) -> None:
    # Swagger UI renders the operations as they scroll into view: the deep link scrolls to one
    # far down the document (the contract has over a hundred routes).
    page = offline.page("/docs#/Message/MessageService_StreamMessage")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Relais", timeout=30_000)
    expect(page.locator(".opblock").first).to_be_visible()
    stream = page.locator(".opblock-summary-path", has_text="/api/messages/stream/{chat_id}")
    expect(stream).to_have_count(1, timeout=30_000)
    screenshot(page, "docs-swagger")
    assert offline.blocked == [] and errors == []


@pytest.mark.parametrize("path", ["/redoc", "/core-docs"])
def test_redoc_renders_the_contract_with_its_fonts_offline(offline: OfflineContext, path: str) -> None:
    page = offline.page(path)

    expect(page.get_by_role("heading", name="Relais", exact=False).first).to_be_visible(timeout=60_000)
    expect(page.get_by_text("/admin/roles/{role_id}").first).to_be_visible()
    page.evaluate("document.fonts.ready")
    loaded = page.evaluate("[...document.fonts].filter(f => f.status === 'loaded').map(f => f.family)")
    assert "Montserrat" in loaded
    screenshot(page, f"docs{path.replace('/', '-')}")
    assert offline.blocked == []
