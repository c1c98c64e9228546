"""Browser tests: Debian's Chromium (installed by `make test`) driven by Playwright against a
live stack with the real Gemma model and the real embedding model.

Every page is opened in a context that refuses any request not addressed to the stack and
records it, so a test can assert the page needed nothing from the network. Screenshots go
to test-output/screenshots/ (ignored by git).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD, stack_settings
from tests.support.live import LiveStack

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-output" / "screenshots"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@dataclass
class OfflineContext:
    """A browser context where only the stack answers; `blocked` lists what was refused."""

    context: BrowserContext
    base_url: str
    blocked: list[str] = field(default_factory=list)

    def page(self, path: str = "/", *, width: int = 1280, height: int = 860) -> Page:
        page = self.context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.goto(self.base_url + path)
        return page


def screenshot(page: Page, name: str, *, full_page: bool = False) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


@pytest.fixture(scope="session")
def playwright_driver() -> Iterator[Playwright]:
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
    yield launched
    launched.close()


def sqlite_stack(tmp_path_factory: pytest.TempPathFactory, **overrides: object) -> LiveStack:
    data = tmp_path_factory.mktemp("web")
    return LiveStack(stack_settings(data, f"sqlite:///{data / 'relais.db'}", **overrides)).start()


@pytest.fixture(scope="module")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The packaged Gemma model (loading in the background from the start) and real retrieval."""
    live = sqlite_stack(
        tmp_path_factory,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        llm_preload=True,
        retrieval_preload=True,
        llm_default_max_tokens=24,
    )
    yield live
    live.stop()


def offline_context(browser: Browser, base_url: str) -> Iterator[OfflineContext]:
    context = browser.new_context(locale="en-GB")
    offline = OfflineContext(context=context, base_url=base_url)

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in LOCAL_HOSTS or route.request.url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            offline.blocked.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", only_local)
    yield offline
    context.close()


@pytest.fixture
def offline(browser: Browser, web_stack: LiveStack) -> Iterator[OfflineContext]:
    yield from offline_context(browser, web_stack.base_url)


def sign_in(page: Page, email: str = ADMIN_EMAIL, password: str = ADMIN_PASSWORD) -> None:
    page.get_by_label("Email or username").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Hello").wait_for()
