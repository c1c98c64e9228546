/**
 * @relais/client/rest: a small typed REST client for browsers (and any runtime with fetch), from
 * the types of the server's /openapi.json (openapi-typescript) and openapi-fetch.
 *
 *     const rest = createRestClient({ baseUrl: "https://relais.example", token });
 *     const { data, error } = await rest.GET("/api/models");
 *     const streamed = await rest.POST("/llm/stream", { body: { prompt: "Hello" }, parseAs: "stream" });
 *     for await (const event of readEvents(streamed.response)) console.log(event);
 *
 * Paths, bodies, answers and error bodies are typed from the contract. It imports nothing of Node.
 */

import createFetchClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";
import type { paths } from "./gen/openapi.js";

export type { components, operations, paths } from "./gen/openapi.js";

export type RelaisRestClient = Client<paths>;

export interface RestOptions extends ClientOptions {
  /** An access token, or a function returning the current one (sent as `Authorization: Bearer …`). */
  token?: string | (() => string | undefined);
  /** An API key, sent as `X-API-Key`. */
  apiKey?: string;
}

export function createRestClient(options: RestOptions): RelaisRestClient {
  const { token, apiKey, ...fetchOptions } = options;
  const client = createFetchClient<paths>(fetchOptions);
  const credentials: Middleware = {
    onRequest({ request }) {
      const current = typeof token === "function" ? token() : token;
      if (current && !request.headers.has("authorization")) request.headers.set("authorization", `Bearer ${current}`);
      if (apiKey && !request.headers.has("x-api-key")) request.headers.set("x-api-key", apiKey);
      return request;
    },
  };
  client.use(credentials);
  return client;
}

/** One server-sent event: its `event:` name ("message" when absent) and its `data:`, parsed as JSON
 * when it is JSON. */
export interface ServerEvent {
  event: string;
  data: unknown;
}

/** The events of a `text/event-stream` response, as they arrive. Ends with the stream (a `[DONE]`
 * data line ends it too); comments (keep-alives) are skipped. */
export async function* readEvents(response: Response): AsyncGenerator<ServerEvent> {
  if (!response.body) return;
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffered = "";
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let end: number;
      while ((end = buffered.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffered.slice(0, end);
        buffered = buffered.slice(end).replace(/^\r?\n\r?\n/, "");
        const parsed = parseEvent(block);
        if (parsed === "done") return;
        if (parsed) yield parsed;
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

function parseEvent(block: string): ServerEvent | "done" | undefined {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split(/\r?\n/)) {
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
    if (field === "event") event = value;
    else if (field === "data") data.push(value);
  }
  if (data.length === 0) return undefined;
  const text = data.join("\n");
  if (text === "[DONE]") return "done";
  try {
    return { event, data: JSON.parse(text) };
  } catch {
    return { event, data: text };
  }
}
