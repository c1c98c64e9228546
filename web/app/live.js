// The chat rooms of /ws/socket.io: every message stored in the open chat, by this tab, another
// tab or another client, arrives as `new_message`; `typing` tells the room someone is writing.
import { io } from "../vendor/socket.io-client/socket.io.esm.min.js";
import { session } from "./api.js";

let socket = null;
let room = null;
const handlers = { message: () => {}, typing: () => {}, state: () => {} };

export function connectLive() {
  disconnectLive();
  const current = session();
  if (!current) return;
  // The token is read at each (re)connection, so a refreshed token is used after a drop.
  socket = io({ path: "/ws/socket.io", transports: ["websocket", "polling"], auth: (cb) => cb({ token: session()?.access_token }) });
  socket.on("connect", () => {
    handlers.state(true);
    if (room !== null) socket.emit("join_chat", { chat_id: room });
  });
  socket.on("disconnect", () => handlers.state(false));
  socket.on("connect_error", () => handlers.state(false));
  socket.on("new_message", (message) => handlers.message(message));
  socket.on("user_typing", (event) => handlers.typing(event));
}

export function disconnectLive() {
  socket?.disconnect();
  socket = null;
}

export function onLive(kind, handler) {
  handlers[kind] = handler;
}

export function isLive() {
  return Boolean(socket?.connected);
}

/** Join one chat's room (leaving the previous one); resolves with the server's acknowledgement. */
export function joinRoom(chatId) {
  if (room !== null && room !== chatId) socket?.emit("leave_chat", { chat_id: room });
  room = chatId;
  if (!socket?.connected || chatId === null) return Promise.resolve({ ok: false });
  return socket.timeout(5000).emitWithAck("join_chat", { chat_id: chatId }).catch(() => ({ ok: false }));
}

export function sendTyping(chatId, isTyping) {
  if (socket?.connected) socket.emit("typing", { chat_id: chatId, is_typing: isTyping });
}
