// Building the page without innerHTML: every text reaches the DOM as a text node.

/** h("button", {class: "x", onclick: f}, "Label", child) → an element. */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key in element && typeof value !== "string") element[key] = value;
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace an element's children. */
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let toastTimer = 0;

/** A short message in the live region, read out by screen readers. */
export function toast(text, kind = "info") {
  const region = document.getElementById("toast");
  region.dataset.kind = kind;
  region.textContent = text;
  region.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { region.hidden = true; }, kind === "error" ? 8000 : 4000);
}

/** A labelled form field: label + input (or select/textarea) with a shared id. */
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  const hintElement = hint ? h("small", { id: `${id}-hint`, class: "hint" }, hint) : null;
  if (hintElement) control.setAttribute("aria-describedby", hintElement.id);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, hintElement);
}

/** Ask before something that cannot be undone, with the native modal dialog (focus trapped, Esc closes). */
export function confirmAction(question, confirmLabel = "Delete") {
  return new Promise((resolve) => {
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-label": question },
      h("p", {}, question),
      h(
        "form",
        { method: "dialog", class: "row end" },
        h("button", { value: "cancel", class: "ghost" }, "Cancel"),
        h("button", { value: "ok", class: "danger" }, confirmLabel),
      ),
    );
    dialog.addEventListener("close", () => {
      resolve(dialog.returnValue === "ok");
      dialog.remove();
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

export function formatDate(value) {
  if (!value) return "";
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleString();
}

export function formatBytes(bytes) {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
