"""The web app in a real browser against the real model: sign in, an agent with a document,
a reply streamed token by token that cites the document's exact span, a second page of the
same account receiving the messages live, at desktop and phone widths, with no network."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import OfflineContext, screenshot, sign_in

pytestmark = pytest.mark.slow

FACT = "The lighthouse of Kermor is painted green and its keeper is called Yann Le Goff."
DOCUMENT = f"# Kermor\n\n{FACT}\n\nThe lighthouse was built in 1881 on the northern rocks.\n"
# Records, in the page, the progress bars an upload shows (they go once it is done).
WATCH_UPLOADS = """() => {
  window.progressBars = [];
  new MutationObserver((changes) => {
    for (const change of changes) for (const node of change.addedNodes) {
      const bar = node.querySelector?.('progress');
      if (bar) window.progressBars.push(bar.getAttribute('aria-label'));
    }
  }).observe(document.body, {subtree: true, childList: true});
}"""
# Records, in the page, the length of the reply being streamed each time it changes.
WATCH_STREAM = """() => {
  window.streamLengths = [];
  new MutationObserver(() => {
    const live = document.querySelector('.message.assistant.streaming .content');
    if (live) window.streamLengths.push(live.textContent.length);
  }).observe(document.querySelector('.log'), {subtree: true, childList: true, characterData: true});
}"""


def create_agent(page: Page) -> None:
    page.get_by_role("link", name="Agents").click()
    page.get_by_role("link", name="New agent").click()
    page.get_by_label("Name").fill("Kermor guide")
    page.get_by_label("Instructions (system prompt)").fill("Answer questions about the Kermor lighthouse.")
    page.get_by_label("Public").check()
    page.get_by_role("button", name="Create agent").click()
    expect(page.get_by_role("heading", name="Edit Kermor guide")).to_be_visible()


def upload(page: Page, path: Path) -> None:
    page.locator("input[type=file]").set_input_files(str(path))


def test_chat_with_an_agent_streams_cites_and_reaches_a_second_page(offline: OfflineContext, tmp_path: Path) -> None:
    page = offline.page("/")
    expect(page.get_by_role("heading", name="Sign in to Relais")).to_be_visible()
    screenshot(page, "sign-in")
    sign_in(page)
    screenshot(page, "home")

    create_agent(page)
    notes = tmp_path / "kermor.md"
    notes.write_text(DOCUMENT)
    page.evaluate(WATCH_UPLOADS)
    upload(page, notes)
    expect(page.get_by_text("kermor.md: 1 passage indexed")).to_be_visible(timeout=120_000)
    assert page.evaluate("window.progressBars") == ["Uploading kermor.md"]
    refused = tmp_path / "photo.pdf"
    refused.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)
    upload(page, refused)
    expect(page.get_by_role("alert").filter(has_text="photo.pdf refused")).to_be_visible(timeout=60_000)
    screenshot(page, "agent-documents", full_page=True)

    page.get_by_role("link", name="← Agents").click()
    page.get_by_role("button", name="Chat with Kermor guide").first.click()
    expect(page.get_by_role("textbox", name="Message")).to_be_focused()
    chat_url = page.url

    second = offline.context.new_page()
    second.goto(chat_url)
    expect(second.get_by_role("textbox", name="Message")).to_be_visible()

    # The app paints tokens on animation frames, which a background tab does not get: the
    # second page opened last, so bring the first back to the front before it streams.
    page.bring_to_front()
    page.evaluate(WATCH_STREAM)
    page.get_by_role("textbox", name="Message").fill("What colour is the lighthouse of Kermor?")
    page.get_by_role("button", name="Send").click()
    expect(page.get_by_role("button", name="Stop")).to_be_visible()
    reply = page.locator(".message.assistant:not(.streaming)").last
    expect(reply).to_be_visible(timeout=240_000)

    lengths = page.evaluate("window.streamLengths")
    assert len({n for n in lengths if n > 0}) >= 2, f"the reply arrived in one piece: {lengths}"
    assert reply.get_attribute("data-status") == "complete"
    reply.get_by_text("Sources").click()
    quote = reply.locator(".quote").first
    expect(quote).to_contain_text(FACT)
    expect(reply.locator(".cite").first).to_contain_text("kermor.md")
    expect(page.get_by_role("button", name="Regenerate")).to_be_visible()
    expect(page.get_by_role("button", name="Stop")).to_be_hidden()
    screenshot(page, "conversation", full_page=True)

    text = reply.locator(".content").inner_text()
    live = second.locator(".message.assistant").last
    expect(live).to_be_visible(timeout=30_000)
    expect(live.locator(".content")).to_have_text(text)
    expect(second.locator(".message.user")).to_contain_text("What colour is the lighthouse of Kermor?")
    expect(second.locator(".chats [aria-current=page] .title")).to_have_text("What colour is the lighthouse of Kermor?")
    screenshot(second, "conversation-second-page")

    second.set_viewport_size({"width": 390, "height": 844})
    screenshot(second, "conversation-phone")
    second.get_by_role("button", name="Show the chat list").click()
    expect(second.get_by_role("button", name="+ New chat")).to_be_focused()
    expect(second.locator("#sidebar")).to_have_css("transform", "none")  # slid in
    screenshot(second, "chat-list-phone")
    second.keyboard.press("Escape")

    assert offline.blocked == []


def test_markdown_from_a_model_cannot_inject_markup(offline: OfflineContext) -> None:
    page = offline.page("/")
    rendered = page.evaluate(
        """async () => {
          const { renderMarkdown } = await import('/static/app/markdown.js');
          const box = document.createElement('div');
          box.append(renderMarkdown([
            '# Title', '<img src=x onerror="window.pwned=1">', '<script>window.pwned=2</script>',
            '[link](javascript:window.pwned=3)', '<a href="https://example.org" onclick="window.pwned=4">ok</a>',
            '<iframe src="/"></iframe>', '<div style="position:fixed">x</div>', '```js', 'const a = "<b>";', '```',
          ].join('\\n\\n')));
          document.body.append(box);
          await new Promise((done) => setTimeout(done, 100));
          return { html: box.innerHTML, pwned: window.pwned ?? null, code: box.querySelector('pre code')?.textContent };
        }"""
    )
    html = rendered["html"]
    assert rendered["pwned"] is None
    assert "onerror" not in html and "<script" not in html and "javascript:" not in html and "onclick" not in html
    assert "<iframe" not in html and "style=" not in html
    assert "<h1>Title</h1>" in html and 'rel="noopener noreferrer nofollow"' in html
    assert rendered["code"].strip() == 'const a = "<b>";'


def test_admin_sees_users_roles_and_creates_an_api_key(offline: OfflineContext) -> None:
    page = offline.page("/")
    sign_in(page)
    page.get_by_role("link", name="Admin").click()
    expect(page.get_by_role("cell", name="admin@relais.test", exact=True)).to_be_visible()
    screenshot(page, "admin-users")
    page.get_by_role("link", name="Roles").click()
    expect(page.get_by_role("heading", name="admin", exact=True)).to_be_visible()
    page.get_by_role("link", name="API keys").click()
    expect(page.get_by_role("heading", name="New API key")).to_be_visible()
    page.get_by_label("Name").fill("browser test key")
    page.get_by_role("button", name="Create key").click()
    expect(page.locator(".secret")).to_contain_text("rls_")
    expect(page.get_by_role("cell", name="browser test key", exact=True)).to_be_visible()
    screenshot(page, "admin-keys")
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Relais")).to_be_visible()
    assert offline.blocked == []


def test_stream_events_become_tokens_tool_steps_and_errors(offline: OfflineContext) -> None:
    page = offline.page("/")
    steps = page.evaluate(
        """async () => {
          const { readEvent } = await import('/static/app/views/conversation.js');
          const { toolView } = await import('/static/app/views/messages.js');
          const action = readEvent('message', {type: 'action', tool: 'search', params: {q: '<script>x</script>'}});
          const view = toolView(action.tool);
          return {
            foyer: readEvent('message', {token: 'Hel', message_id: 3}),
            orchestrator: readEvent('token', {sequence: 1, token: {text: 'lo', token_count: 1}}),
            action: action.tool.kind, tool: view.querySelector('summary').textContent,
            params: view.querySelector('pre').textContent, markup: view.querySelectorAll('script').length,
            result: readEvent('result', {type: 'result', tool: 'search', result: '3 hits'}).tool.kind,
            final: readEvent('result', {sequence: 9, result: {response: 'Hello'}}),
            error: readEvent('message', {error: 'model failed', code: 'UNAVAILABLE'}),
          };
        }"""
    )

    assert steps["foyer"] == {"token": "Hel"} and steps["orchestrator"] == {"token": "lo"}
    assert steps["action"] == "action" and steps["tool"] == "Tool call: search" and steps["markup"] == 0
    assert '"q": "<script>x</script>"' in steps["params"]
    assert steps["result"] == "result" and steps["final"] == {}
    assert steps["error"] == {"error": "model failed"}
