// How one message reads: who wrote it, its Markdown, its status, the tool calls it made and
// the passages it was given, each with the exact span of the source it quotes.
import { h } from "../dom.js";
import { renderMarkdown } from "../markdown.js";

export function messageView(message, { streaming = false } = {}) {
  const assistant = message.role === "assistant";
  const status = message.status && message.status !== "complete" && !streaming ? message.status : null;
  return h(
    "li",
    {
      class: `message ${assistant ? "assistant" : "user"}${streaming ? " streaming" : ""}`,
      dataset: { id: message.id ?? "", status: message.status || "" },
    },
    h(
      "div",
      { class: "meta" },
      h("strong", {}, assistant ? "Assistant" : "You"),
      assistant && message.llm_model ? h("span", { class: "muted" }, message.llm_model) : null,
      status ? h("span", { class: `badge ${status}` }, status === "incomplete" ? "stopped" : status) : null,
    ),
    h("div", { class: "tools" }),
    h("div", { class: "content" }, streaming ? h("span", { class: "cursor", "aria-label": "Writing" }) : renderMarkdown(message.content)),
    assistant && message.sources?.length ? sourcesView(message.sources) : null,
  );
}

export function sourcesView(passages) {
  return h(
    "details",
    { class: "sources" },
    h("summary", {}, `Sources (${passages.length})`),
    h(
      "ol",
      {},
      passages.map((passage) => {
        const source = passage.source || {};
        return h(
          "li",
          { class: "source" },
          h(
            "p",
            { class: "cite" },
            h("strong", {}, source.path || "source"),
            ` · characters ${source.start}–${source.end}`,
            source.sha256 ? h("small", { class: "muted", title: source.sha256 }, ` · sha256 ${source.sha256.slice(0, 12)}…`) : null,
          ),
          // The exact characters [start, end) of the source, as text: never interpreted as markup.
          h("blockquote", { class: "quote" }, passage.text),
        );
      }),
    ),
  );
}

export function toolView(step) {
  const { kind, tool, name, params, arguments: args, result, output } = step;
  const detail = kind === "action" ? params ?? args : result ?? output;
  return h(
    "details",
    { class: `tool ${kind}`, open: kind === "action" },
    h("summary", {}, kind === "action" ? `Tool call: ${tool || name || "tool"}` : `Tool result: ${tool || name || "tool"}`),
    detail === undefined ? null : h("pre", {}, typeof detail === "string" ? detail : JSON.stringify(detail, null, 2)),
  );
}
