// Markdown from models and documents, rendered safely: marked turns it into HTML, DOMPurify keeps
// only harmless markup (no scripts, handlers, styles, frames or forms), and the page's CSP blocks
// anything that would still load from elsewhere.
import { marked } from "../vendor/marked/marked.esm.js";
import DOMPurify from "../vendor/dompurify/purify.es.mjs";
import { h } from "./dom.js";

marked.setOptions({ gfm: true, breaks: true });

const PURIFY = {
  USE_PROFILES: { html: true },
  FORBID_TAGS: ["style", "form", "input", "button", "textarea", "select", "iframe", "object", "embed", "svg", "math"],
  FORBID_ATTR: ["style", "id", "name"],
  ALLOWED_URI_REGEXP: /^(?:https?:|mailto:|#)/i,
  RETURN_DOM_FRAGMENT: true,
};

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A") {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

/** The Markdown as a sanitised DocumentFragment, code blocks with a copy button. */
export function renderMarkdown(text) {
  const fragment = DOMPurify.sanitize(marked.parse(text || ""), PURIFY);
  for (const pre of fragment.querySelectorAll("pre")) {
    const code = pre.querySelector("code");
    const language = /language-([\w+-]+)/.exec(code?.className || "")?.[1];
    const copy = h("button", { class: "copy ghost small", type: "button" }, "Copy");
    copy.addEventListener("click", async () => {
      await navigator.clipboard?.writeText(code ? code.textContent : pre.textContent);
      copy.textContent = "Copied";
      setTimeout(() => { copy.textContent = "Copy"; }, 1500);
    });
    const bar = h("div", { class: "code-bar" }, h("span", {}, language || "code"), copy);
    pre.replaceWith(h("div", { class: "code" }, bar, pre.cloneNode(true)));
  }
  return fragment;
}
