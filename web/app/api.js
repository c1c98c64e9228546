// The Relais HTTP API as the app uses it: bearer tokens kept per browser profile (shared by its
// tabs), refreshed once on a 401, errors turned into ApiError with the server's own message.

const STORE = "relais.session";
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && (body.detail || body.error?.message || body.message)) || `HTTP ${status}`;
    super(typeof message === "string" ? message : JSON.stringify(message));
    this.status = status;
    this.code = body?.code || "";
    // [{field, message}] for validation errors (xcore's nested details).
    this.fields = (body?.error?.details || []).filter((d) => d && d.field);
  }
}

export function session() {
  try {
    return JSON.parse(localStorage.getItem(STORE)) || null;
  } catch {
    return null;
  }
}

function saveSession(value) {
  if (value) localStorage.setItem(STORE, JSON.stringify(value));
  else localStorage.removeItem(STORE);
  for (const listener of listeners) listener(value);
}

/** Called with the new session (or null) whenever this tab or another signs in or out. */
export function onSessionChange(listener) {
  listeners.add(listener);
}

window.addEventListener("storage", (event) => {
  if (event.key === STORE) for (const listener of listeners) listener(session());
});

function fromLogin(body) {
  return {
    access_token: body.access_token,
    refresh_token: body.refresh_token,
    csrf_token: body.csrf_token,
    session_id: body.session_id,
    user: body.user,
  };
}

export async function signIn(login, password) {
  const body = await request("POST", "/auth/login", { json: { user: login, password }, anonymous: true });
  saveSession(fromLogin(body));
  return body.user;
}

export async function register(fields) {
  return request("POST", "/auth/register", { json: fields, anonymous: true });
}

export async function signOut() {
  try {
    if (session()) await request("POST", "/auth/logout", { json: {} });
  } finally {
    saveSession(null);
  }
}

export function updateUser(user) {
  const current = session();
  if (current) saveSession({ ...current, user });
}

/** New tokens, once for all tabs: a rotated refresh token must never be used twice. */
async function refresh(stale) {
  const run = async () => {
    const current = session();
    if (!current) return null;
    if (current.access_token !== stale) return current; // another tab already refreshed
    const response = await fetch("/auth/refresh", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ refresh_token: current.refresh_token }),
    });
    if (!response.ok) {
      saveSession(null);
      return null;
    }
    const renewed = { ...current, ...fromLogin(await response.json()) };
    saveSession(renewed);
    return renewed;
  };
  return navigator.locks ? navigator.locks.request("relais.refresh", run) : run();
}

function headersFor(current, extra = {}) {
  const headers = { accept: "application/json", ...extra };
  if (current) headers.authorization = `Bearer ${current.access_token}`;
  return headers;
}

function urlWith(path, query) {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

/** fetch with the session's token; one refresh and retry on 401. Returns the Response. */
export async function send(method, path, { json, query, signal, anonymous = false, accept } = {}) {
  const attempt = (current) =>
    fetch(urlWith(path, query), {
      method,
      signal,
      headers: headersFor(anonymous ? null : current, {
        ...(json !== undefined ? { "content-type": "application/json" } : {}),
        ...(accept ? { accept } : {}),
      }),
      body: json !== undefined ? JSON.stringify(json) : undefined,
    });
  const current = session();
  let response = await attempt(current);
  if (response.status === 401 && !anonymous && current) {
    const renewed = await refresh(current.access_token);
    if (renewed) response = await attempt(renewed);
  }
  if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
  return response;
}

export async function request(method, path, options = {}) {
  const response = await send(method, path, options);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

export const get = (path, query) => request("GET", path, { query });

/** Upload a file with progress (fetch cannot report upload progress; XMLHttpRequest can). */
export function upload(file, fields, onProgress) {
  const form = new FormData();
  form.append("file", file, file.name);
  for (const [key, value] of Object.entries(fields)) form.append(key, String(value));
  const post = (current) =>
    new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/api/documents/upload");
      if (current) xhr.setRequestHeader("authorization", `Bearer ${current.access_token}`);
      xhr.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) onProgress(event.loaded / event.total);
      });
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = null;
        }
        resolve({ status: xhr.status, body });
      });
      xhr.addEventListener("error", () => reject(new ApiError(0, { detail: "The server could not be reached" })));
      xhr.send(form);
    });
  return (async () => {
    const current = session();
    let result = await post(current);
    if (result.status === 401 && current) {
      const renewed = await refresh(current.access_token);
      if (renewed) result = await post(renewed);
    }
    if (result.status < 200 || result.status >= 300) throw new ApiError(result.status, result.body);
    return result.body;
  })();
}

/** Server-sent events of a Response as {event, data} (data parsed as JSON when it is). */
export async function* events(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value.replace(/\r\n?/g, "\n");
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const parsed = parseBlock(block);
      if (parsed) yield parsed;
    }
  }
}

function parseBlock(block) {
  let event = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (name === "event") event = value;
    else if (name === "data") data.push(value);
  }
  if (!data.length) return null;
  const text = data.join("\n");
  try {
    return { event, data: JSON.parse(text) };
  } catch {
    return { event, data: text };
  }
}
