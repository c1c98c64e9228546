// The Relais web app: hash routes, one view at a time in <main>, the chat list beside it.
import { onSessionChange, session, signOut, get, updateUser } from "./api.js";
import { h, fill, toast } from "./dom.js";
import { connectLive, disconnectLive } from "./live.js";
import { renderAuth } from "./views/auth.js";
import { renderSidebar, refreshChats } from "./views/chats.js";
import { renderConversation, leaveConversation } from "./views/conversation.js";
import { renderAgents, renderAgentForm } from "./views/agents.js";
import { renderAdmin } from "./views/admin.js";
import { renderHome } from "./views/home.js";

const main = document.getElementById("main");
const sidebar = document.getElementById("sidebar");
const toggle = document.getElementById("menu-toggle");

export function isAdmin(user) {
  const permissions = user?.permissions || [];
  return Boolean(user?.is_admin || permissions.includes("*") || permissions.includes("users:read"));
}

const ROUTES = [
  [/^#\/chats\/(\d+)$/, (id) => renderConversation(main, Number(id))],
  [/^#\/agents$/, () => renderAgents(main)],
  [/^#\/agents\/new$/, () => renderAgentForm(main, null)],
  [/^#\/agents\/(\d+)$/, (id) => renderAgentForm(main, Number(id))],
  [/^#\/admin(?:\/(\w+))?$/, (tab) => renderAdmin(main, tab || "users")],
  [/^#?\/?$/, () => renderHome(main)],
];

function renderChrome() {
  const user = session()?.user;
  const signedIn = Boolean(user);
  sidebar.hidden = !signedIn;
  toggle.hidden = !signedIn;
  const link = (href, label) => h("a", { href, "aria-current": location.hash.startsWith(href) ? "page" : null }, label);
  fill(
    document.getElementById("nav"),
    signedIn ? [link("#/chats", "Chats"), link("#/agents", "Agents"), isAdmin(user) ? link("#/admin", "Admin") : null] : null,
  );
  fill(
    document.getElementById("account"),
    signedIn
      ? [
          h("span", { class: "who", title: user.email }, user.full_name || user.username || user.email),
          h("button", { type: "button", class: "ghost", onclick: () => signOut().then(() => (location.hash = "#/")) }, "Sign out"),
        ]
      : null,
  );
}

async function route() {
  renderChrome();
  closeMenu();
  if (!session()) {
    leaveConversation();
    renderAuth(main);
    return;
  }
  const hash = location.hash === "#/chats" ? "#/" : location.hash;
  if (!hash.startsWith("#/chats/")) leaveConversation();
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(hash);
    if (match) {
      try {
        await view(...match.slice(1));
      } catch (error) {
        fill(main, h("p", { class: "error", role: "alert" }, error.message));
      }
      return;
    }
  }
  fill(main, h("h1", {}, "Not found"), h("p", {}, h("a", { href: "#/" }, "Back to the start")));
}

function closeMenu() {
  document.body.classList.remove("menu-open");
  toggle.setAttribute("aria-expanded", "false");
}

toggle.addEventListener("click", () => {
  const open = !document.body.classList.contains("menu-open");
  document.body.classList.toggle("menu-open", open);
  toggle.setAttribute("aria-expanded", String(open));
  if (open) sidebar.querySelector("input, a, button")?.focus();
});
document.addEventListener("keydown", (event) => {
  if (event.key === "Escape" && document.body.classList.contains("menu-open")) {
    closeMenu();
    toggle.focus();
  }
});

let wasSignedIn = Boolean(session());

async function start() {
  if (session()) {
    try {
      updateUser(await get("/auth/me"));
    } catch (error) {
      if (error.status === 401) await signOut();
      else toast(error.message, "error");
    }
  }
  if (session()) {
    connectLive();
    renderSidebar(sidebar);
  }
  await route();
}

onSessionChange((current) => {
  const signedIn = Boolean(current);
  if (signedIn === wasSignedIn) return renderChrome();
  wasSignedIn = signedIn;
  if (signedIn) {
    connectLive();
    renderSidebar(sidebar);
  } else {
    disconnectLive();
    fill(sidebar);
  }
  route();
});

window.addEventListener("hashchange", () => {
  route();
  if (session()) refreshChats();
});

start();
