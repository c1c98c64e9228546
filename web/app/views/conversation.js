// One conversation: its messages (Markdown, sources with their exact spans, tool calls), a reply
// streamed token by token with stop and regenerate, the model picker, attachments, live room.
import { get, request, send, events, session } from "../api.js";
import { confirmAction, field, fill, h, toast } from "../dom.js";
import { joinRoom, onLive, sendTyping } from "../live.js";
import { renderMarkdown } from "../markdown.js";
import { documentsPanel } from "./documents.js";
import { refreshChats } from "./chats.js";
import { messageView, toolView } from "./messages.js";

let current = null; // {chatId, log, streaming, ...} of the open conversation
let models = null;

export function leaveConversation() {
  current?.abort?.abort();
  current = null;
  joinRoom(null);
}

export async function renderConversation(main, chatId) {
  leaveConversation();
  const [chat, catalogue] = await Promise.all([get(`/api/chats/${chatId}`), models || get("/api/models")]);
  models = catalogue;
  const state = { chatId, chat, streaming: false, abort: null, reloadTimer: 0 };
  current = state;
  state.log = h("ol", { class: "log", role: "log", "aria-label": "Messages", "aria-live": "polite" });
  state.typing = h("p", { class: "typing muted", "aria-live": "polite" });
  state.title = h("h1", { class: "chat-title" }, chat.title || "New chat");
  fill(
    main,
    h(
      "div",
      { class: "conversation" },
      header(state),
      state.log,
      state.typing,
      composer(state),
      h("details", { class: "attachments" }, h("summary", {}, "Chat documents"), documentsPanel("chat", chatId)),
    ),
  );
  showMessages(state, chat.messages);
  onLive("message", (message) => {
    if (current === state && message.chat_id === chatId && !state.streaming) scheduleReload(state);
  });
  onLive("typing", (event) => {
    if (current !== state || event.chat_id !== chatId || event.user_id === session()?.user?.id) return;
    state.typing.textContent = event.is_typing ? "Someone is typing in another window…" : "";
  });
  onLive("state", (up) => {
    if (up && current === state) joinRoom(chatId);
  });
  joinRoom(chatId);
  state.input.focus();
}

function header(state) {
  const { chat } = state;
  return h(
    "div",
    { class: "chat-head" },
    h("div", {}, state.title, chat.agent ? h("p", { class: "muted" }, `with ${chat.agent.name}`) : null),
    h(
      "div",
      { class: "row" },
      h("button", { type: "button", class: "ghost", onclick: () => rename(state) }, "Rename"),
      h("button", { type: "button", class: "ghost danger", onclick: () => remove(state) }, "Delete"),
    ),
  );
}

async function rename(state) {
  const input = h("input", { value: state.chat.title, maxlength: 200, required: true, "aria-label": "Chat title" });
  const form = h(
    "form",
    {
      class: "row",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          state.chat = { ...state.chat, ...(await request("PUT", `/api/chats/${state.chatId}`, { json: { title: input.value.trim() } })) };
          fill(state.title, state.chat.title);
          refreshChats();
        } catch (error) {
          toast(error.message, "error");
          fill(state.title, state.chat.title);
        }
      },
    },
    input,
    h("button", { type: "submit" }, "Save"),
    h("button", { type: "button", class: "ghost", onclick: () => fill(state.title, state.chat.title) }, "Cancel"),
  );
  fill(state.title, form);
  input.select();
}

async function remove(state) {
  if (!(await confirmAction(`Delete “${state.chat.title || "this chat"}” and all its messages?`))) return;
  try {
    await request("DELETE", `/api/chats/${state.chatId}`);
    location.hash = "#/";
  } catch (error) {
    toast(error.message, "error");
  }
}

function composer(state) {
  state.input = h("textarea", { rows: 2, maxlength: 4000, required: true, placeholder: "Write a message… (Enter to send, Shift+Enter for a new line)" });
  state.model = h(
    "select",
    {},
    h("option", { value: "" }, state.chat.agent ? "The agent's model" : "Default model"),
    models.models.map((model) => h("option", { value: model.key }, model.name || model.key)),
  );
  state.sendButton = h("button", { type: "submit" }, "Send");
  state.stopButton = h("button", { type: "button", class: "danger", hidden: true, onclick: () => state.abort?.abort() }, "Stop");
  state.regenerate = h("button", { type: "button", class: "ghost", hidden: true, onclick: () => regenerate(state) }, "Regenerate");
  let typingTimer = 0;
  state.input.addEventListener("input", () => {
    if (!typingTimer) sendTyping(state.chatId, true);
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => { sendTyping(state.chatId, false); typingTimer = 0; }, 1500);
  });
  state.input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      state.input.form.requestSubmit();
    }
  });
  return h(
    "form",
    {
      class: "composer",
      onsubmit: (event) => {
        event.preventDefault();
        const text = state.input.value.trim();
        if (!text || state.streaming) return;
        state.input.value = "";
        stream(state, text);
      },
    },
    field("Message", state.input),
    h("div", { class: "row between" }, field("Model", state.model), h("div", { class: "row" }, state.regenerate, state.stopButton, state.sendButton)),
  );
}

function showMessages(state, messages) {
  state.messages = messages;
  fill(state.log, messages.map((message) => messageView(message)));
  const last = messages.at(-1);
  state.regenerate.hidden = !(last && last.role === "assistant");
  state.log.lastElementChild?.scrollIntoView({ block: "end" });
}

function scheduleReload(state) {
  clearTimeout(state.reloadTimer);
  // A message stored elsewhere (another tab, another client) may have titled the chat too.
  state.reloadTimer = setTimeout(() => reload(state).then(refreshChats, (error) => toast(error.message, "error")), 150);
}

async function reload(state) {
  const chat = await get(`/api/chats/${state.chatId}`);
  if (current !== state) return;
  state.chat = chat;
  fill(state.title, chat.title || "New chat");
  showMessages(state, chat.messages);
}

function regenerate(state) {
  const lastUser = [...state.messages].reverse().find((message) => message.role === "user");
  if (lastUser && !state.streaming) stream(state, lastUser.content);
}

/** The reply's events, from the FoyerGPT stream (the agent's model) or the Orchestrator's (a chosen model). */
function openStream(state, text, signal) {
  const model = state.model.value;
  if (!model) return send("GET", `/api/messages/stream/${state.chatId}`, { query: { message: text }, signal, accept: "text/event-stream" });
  return send("POST", "/api/chat", {
    json: { message: text, model, conversation_id: String(state.chatId), stream: true },
    signal,
    accept: "text/event-stream",
  });
}

async function stream(state, text) {
  state.streaming = true;
  state.abort = new AbortController();
  state.sendButton.disabled = true;
  state.stopButton.hidden = false;
  state.regenerate.hidden = true;
  state.log.setAttribute("aria-busy", "true");
  state.log.append(messageView({ role: "user", content: text, status: "complete" }));
  const reply = { role: "assistant", content: "", status: "incomplete", llm_model: state.model.value || null };
  const bubble = messageView(reply, { streaming: true });
  state.log.append(bubble);
  const body = bubble.querySelector(".content");
  const tools = bubble.querySelector(".tools");
  let frame = 0;
  const paint = () => {
    frame = 0;
    fill(body, renderMarkdown(reply.content));
    bubble.scrollIntoView({ block: "end" });
  };
  try {
    const response = await openStream(state, text, state.abort.signal);
    for await (const { event, data } of events(response)) {
      if (data === "[DONE]") break;
      const step = readEvent(event, data);
      if (step.token) {
        reply.content += step.token;
        bubble.dataset.tokens = String(Number(bubble.dataset.tokens || 0) + 1);
        frame ||= requestAnimationFrame(paint);
      } else if (step.tool) {
        tools.append(toolView(step.tool));
      } else if (step.error) {
        throw new Error(step.error);
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") toast(error.message, "error");
  } finally {
    cancelAnimationFrame(frame);
    state.streaming = false;
    state.abort = null;
    state.sendButton.disabled = false;
    state.stopButton.hidden = true;
    state.log.removeAttribute("aria-busy");
    if (current === state) {
      await reload(state).catch((error) => toast(error.message, "error"));
      refreshChats();
      state.input.focus();
    }
  }
}

/**
 * One stream event as {token} | {tool} | {error} | {}. FoyerGPT's frames are bare `data:` lines
 * ({token}, {error}); the Orchestrator's carry `event:` names (token, result, error). Tool steps
 * (`action`, tool `result`) are shown from either, in the /ws/chat shape {type, tool, params, …}.
 */
export function readEvent(event, data) {
  if (!data || typeof data !== "object") return {};
  const kind = data.type || event;
  if (kind === "action" || kind === "tool_call" || data.action) return { tool: { kind: "action", ...(data.action || data) } };
  if ((kind === "result" || kind === "tool_result") && (data.tool || data.tool_result)) {
    return { tool: { kind: "result", ...(data.tool_result || data) } };
  }
  if (typeof data.token === "string") return { token: data.token };
  if (data.token && typeof data.token.text === "string") return { token: data.token.text };
  if (kind === "error" || data.error) {
    const error = data.error;
    return { error: (typeof error === "string" ? error : error?.message) || data.detail || "The reply failed" };
  }
  return {};
}
