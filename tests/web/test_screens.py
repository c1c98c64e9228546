"""The rest of the web app's screens in a real browser, offline, against the real model: sign-up,
sign-out and sign-in by keyboard; public agents seen by another user and edited by their owner;
chats renamed, searched and deleted; a reply stopped mid-stream, then regenerated with a model
chosen in the picker; every control of every screen named for assistive technology."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.conftest import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.identity.helpers import PASSWORD, unique_email
from tests.support.live import LiveStack
from tests.web.conftest import OfflineContext, offline_context, screenshot, sign_in, sqlite_stack

pytestmark = pytest.mark.slow

# Controls (and links) without an accessible name, and images without alt text, on the page.
UNNAMED = """() => [...document.querySelectorAll('input, select, textarea, button, a[href], [role=tab], img')]
  .filter((el) => el.getClientRects().length > 0 || el.type === 'file')
  .filter((el) => {
    if (el.tagName === 'IMG') return !el.hasAttribute('alt');
    const labels = el.labels ? [...el.labels].map((label) => label.textContent).join(' ') : '';
    const named = labels || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || el.getAttribute('title') || (el.tagName !== 'INPUT' && el.textContent);
    return !(named || '').trim();
  })
  .map((el) => el.outerHTML.slice(0, 160))"""


@pytest.fixture(scope="module")
def web_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """Long replies (256 tokens, seconds on the CPU) so that one can be stopped mid-stream."""
    live = sqlite_stack(
        tmp_path_factory,
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
        llm_preload=True,
        llm_default_max_tokens=256,
    )
    yield live
    live.stop()


def assert_named(page: Page, screen: str) -> None:
    assert page.evaluate(UNNAMED) == [], f"unnamed controls on {screen}"
    assert page.locator("h1").count() == 1, f"{screen} has one main heading"


def test_a_new_user_registers_then_signs_out_and_back_in_by_keyboard(offline: OfflineContext) -> None:
    page = offline.page("/")
    page.get_by_role("tab", name="Create account").click()
    email = unique_email("browser")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Name").fill("Ada Lovelace")
    page.get_by_label("Password").fill(PASSWORD)
    assert_named(page, "registration")
    screenshot(page, "register")
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_role("heading", name="Hello, Ada Lovelace")).to_be_visible()
    assert_named(page, "home")
    page.get_by_role("button", name="Sign out").click()

    # The sign-in form takes the focus; Tab moves to the password, Enter signs in.
    expect(page.get_by_label("Email or username")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    expect(page.get_by_label("Password")).to_be_focused()
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Hello, Ada Lovelace")).to_be_visible()
    assert offline.blocked == []


def test_public_agents_are_browsed_by_others_and_edited_by_their_owner(
    offline: OfflineContext, web_stack: LiveStack, browser: Browser
) -> None:
    owner = offline.page("/")
    sign_in(owner)
    owner.get_by_role("link", name="Agents").click()
    owner.get_by_role("link", name="New agent").click()
    owner.get_by_label("Name").fill("Atlas")
    owner.get_by_label("Instructions (system prompt)").fill("Answer questions about maps.")
    owner.get_by_label("Public").check()
    owner.get_by_role("button", name="Create agent").click()
    expect(owner.get_by_role("heading", name="Edit Atlas")).to_be_visible()
    assert_named(owner, "agent form")
    owner.get_by_label("Name").fill("Atlas of maps")
    owner.get_by_role("button", name="Save").click()
    expect(owner.locator("#toast")).to_have_text("Agent saved")
    owner.get_by_role("link", name="← Agents").click()
    expect(owner.get_by_role("link", name="Edit Atlas of maps")).to_be_visible()
    assert_named(owner, "agents")

    email = unique_email("reader")
    httpx.post(f"{web_stack.base_url}/auth/register", json={"email": email, "password": PASSWORD}).raise_for_status()
    reader = offline_context(browser, web_stack.base_url)
    try:
        page = next(reader).page("/")
        sign_in(page, email, PASSWORD)
        page.get_by_role("link", name="Agents").click()
        public = page.locator(".card.agent", has_text="Atlas of maps")
        expect(public).to_be_visible()
        expect(public.get_by_role("button", name="Chat with Atlas of maps")).to_be_visible()
        expect(public.get_by_role("link", name="Edit Atlas of maps")).to_have_count(0)  # not theirs
        screenshot(page, "agents-public")
    finally:
        reader.close()  # closes the context


def rename(page: Page, title: str) -> None:
    page.get_by_role("button", name="Rename").click()
    page.get_by_label("Chat title").fill(title)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("heading", name=title)).to_be_visible()


def test_chats_are_renamed_searched_and_deleted(offline: OfflineContext) -> None:
    page = offline.page("/")
    sign_in(page)
    chats = page.locator(".chats")
    for title in ("Budget 2027", "Holiday plans"):
        page.get_by_role("button", name="+ New chat").click()
        expect(page.get_by_role("textbox", name="Message")).to_be_focused()
        rename(page, title)
        expect(chats.get_by_role("link", name=title)).to_be_visible()
    assert_named(page, "conversation")

    page.get_by_label("Search chats").fill("budget")
    expect(chats.get_by_role("link")).to_have_count(1)
    expect(chats.get_by_role("link", name="Budget 2027")).to_be_visible()
    screenshot(page, "chats-search")
    page.get_by_label("Search chats").fill("")
    chats.get_by_role("link", name="Budget 2027").click()
    expect(page.get_by_role("heading", name="Budget 2027")).to_be_visible()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Delete", exact=True).click()
    expect(page.get_by_role("heading", name="Hello")).to_be_visible()
    expect(chats.get_by_role("link", name="Budget 2027")).to_have_count(0)
    expect(chats.get_by_role("link", name="Holiday plans")).to_be_visible()


def test_a_reply_is_stopped_mid_stream_then_regenerated_with_the_chosen_model(offline: OfflineContext) -> None:
    page = offline.page("/")
    sign_in(page)
    page.get_by_role("button", name="+ New chat").click()
    page.get_by_label("Model").select_option("gemma3-270m")
    page.get_by_role("textbox", name="Message").fill("Tell me a long story about a lighthouse keeper.")
    page.get_by_role("button", name="Send").click()
    page.wait_for_function(
        "() => Number(document.querySelector('.message.assistant.streaming')?.dataset.tokens || 0) >= 3",
        timeout=120_000,
    )
    page.get_by_role("button", name="Stop").click()

    stopped = page.locator(".message.assistant").last
    expect(stopped).to_have_attribute("data-status", "incomplete", timeout=30_000)
    expect(stopped.locator(".badge")).to_have_text("stopped")
    expect(stopped.locator(".meta")).to_contain_text("gemma3-270m")
    screenshot(page, "conversation-stopped")

    page.get_by_role("button", name="Regenerate").click()
    # The new reply, once complete and stored (the page reloads the chat after each stream).
    complete = page.locator('.message.assistant[data-status="complete"]:not(.streaming)')
    expect(complete).to_have_count(1, timeout=240_000)
    replies = page.locator(".message.assistant")
    expect(replies).to_have_count(2)
    expect(replies.last.locator(".meta")).to_contain_text("gemma3-270m")
    expect(page.locator(".message.user")).to_have_count(2)  # the question, asked again
    assert offline.blocked == []


def test_the_admin_screens_name_every_control(offline: OfflineContext) -> None:
    page = offline.page("/")
    sign_in(page)
    for tab, ready in (("users", "cell"), ("roles", "heading"), ("keys", "heading")):
        page.goto(f"{offline.base_url}/#/admin/{tab}")
        name = {"users": ADMIN_EMAIL, "roles": "admin", "keys": "New API key"}[tab]
        expect(page.get_by_role(ready, name=name, exact=True)).to_be_visible()  # type: ignore[arg-type]
        assert_named(page, f"admin {tab}")
