// The chat list: newest activity first, searched by title and message text.
import { get, request } from "../api.js";
import { fill, h, toast } from "../dom.js";

let list = null;
let search = null;
let pending = 0;

export function renderSidebar(sidebar) {
  search = h("input", { type: "search", placeholder: "Search chats", "aria-label": "Search chats" });
  let timer = 0;
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(refreshChats, 250);
  });
  list = h("ul", { class: "chats", "aria-label": "Your chats" });
  fill(
    sidebar,
    h("button", { type: "button", class: "new-chat", onclick: () => newChat(null) }, "+ New chat"),
    search,
    list,
  );
  refreshChats();
}

export async function newChat(agentId, title = "") {
  try {
    const chat = await request("POST", "/api/chats", { json: agentId ? { agent_id: agentId, title } : { title } });
    location.hash = `#/chats/${chat.id}`;
  } catch (error) {
    toast(error.message, "error");
  }
}

export async function refreshChats() {
  if (!list) return;
  const ticket = ++pending;
  const query = search.value.trim();
  try {
    const page = await get("/api/conversations", { search: query, limit: 100 });
    if (ticket !== pending) return; // a newer search answered first
    const current = /^#\/chats\/(\d+)/.exec(location.hash)?.[1];
    fill(
      list,
      page.conversations.length
        ? page.conversations.map((chat) =>
            h(
              "li",
              {},
              h(
                "a",
                { href: `#/chats/${chat.id}`, "aria-current": String(chat.id) === current ? "page" : null },
                h("span", { class: "title" }, chat.title || "New chat"),
                chat.agent ? h("small", {}, chat.agent.name) : null,
              ),
            ),
          )
        : h("li", { class: "muted" }, query ? "No chat matches" : "No chats yet"),
    );
  } catch (error) {
    if (ticket === pending) fill(list, h("li", { class: "error" }, error.message));
  }
}
