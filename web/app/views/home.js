// The start page: begin a chat with a model or an agent.
import { get, session } from "../api.js";
import { fill, h } from "../dom.js";
import { newChat } from "./chats.js";

export async function renderHome(main) {
  const user = session()?.user;
  const agents = await get("/api/agents", { limit: 12 }).catch(() => ({ agents: [] }));
  fill(
    main,
    h("h1", {}, `Hello${user?.full_name ? `, ${user.full_name}` : ""}`),
    h("p", { class: "muted" }, "Start a conversation with a model, or with one of the agents below."),
    h("button", { type: "button", onclick: () => newChat(null) }, "New chat"),
    h("h2", {}, "Agents"),
    agents.agents.length
      ? h("ul", { class: "cards" }, agents.agents.map(agentCard))
      : h("p", { class: "muted" }, "No public agent yet. ", h("a", { href: "#/agents/new" }, "Create one")),
  );
}

export function agentCard(agent, { editable = false } = {}) {
  return h(
    "li",
    { class: "card agent" },
    h("h3", {}, agent.name),
    h("p", { class: "muted clamp" }, agent.system_prompt),
    h("p", { class: "meta" }, `${agent.model || "auto"} · ${agent.is_public ? "public" : "private"}`),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", onclick: () => newChat(agent.id), "aria-label": `Chat with ${agent.name}` }, "Chat"),
      editable ? h("a", { class: "button ghost", href: `#/agents/${agent.id}`, "aria-label": `Edit ${agent.name}` }, "Edit") : null,
    ),
  );
}
