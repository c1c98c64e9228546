// An agent's or a chat's documents: upload with progress, the server's refusal shown as it
// gives it (wrong type, corrupt, too large), list and delete.
import { get, request, upload } from "../api.js";
import { confirmAction, fill, formatBytes, h, toast } from "../dom.js";

const ACCEPT = ".pdf,.docx,.txt,.md,.markdown,.csv,.json,.py,.js,.ts,.html,.css,.xml,.yaml,.yml,.png,.jpg,.jpeg,.gif,.webp";

export function documentsPanel(entityType, entityId, { onUploaded } = {}) {
  const list = h("ul", { class: "documents", "aria-label": "Documents" });
  const status = h("div", { class: "upload-status", role: "status", "aria-live": "polite" });
  const input = h("input", { type: "file", accept: ACCEPT, multiple: true, class: "visually-hidden", id: `upload-${entityType}-${entityId}` });
  const label = h("label", { for: input.id, class: "button ghost", tabindex: "0" }, "Upload documents");
  label.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      input.click();
    }
  });

  async function refresh() {
    try {
      const page = await get("/api/documents", { entity_type: entityType, entity_id: entityId, limit: 100 });
      fill(list, page.documents.map((document) => row(document, refresh)));
    } catch (error) {
      fill(list, h("li", { class: "error" }, error.message));
    }
  }

  input.addEventListener("change", async () => {
    for (const file of input.files) await send(file);
    input.value = "";
    refresh();
  });

  async function send(file) {
    const bar = h("progress", { max: 1, value: 0, "aria-label": `Uploading ${file.name}` });
    const line = h("p", { class: "uploading" }, h("span", {}, file.name), bar);
    status.append(line);
    try {
      const document = await upload(file, { entity_type: entityType, entity_id: entityId }, (share) => { bar.value = share; });
      fill(line, h("span", { class: "ok" }, `${document.filename}: ${passages(document.chunk_count)} indexed`));
      onUploaded?.(document);
      setTimeout(() => line.remove(), 6000);
    } catch (error) {
      const why = error.status === 413 ? `too large (${formatBytes(file.size)}; the limit is 10 MB)` : error.message;
      fill(line, h("span", { class: "error", role: "alert" }, `${file.name} refused: ${why}`));
    }
  }

  refresh();
  return h("section", { class: "panel", "aria-label": "Documents" }, h("div", { class: "row between" }, h("h2", {}, "Documents"), label, input), status, list);
}

function passages(count) {
  return `${count} passage${count === 1 ? "" : "s"}`;
}

function row(document, refresh) {
  return h(
    "li",
    {},
    h("span", { class: "name" }, document.filename),
    h("small", { class: "muted" }, `${formatBytes(document.file_size)} · ${passages(document.chunk_count)}`),
    h(
      "button",
      {
        type: "button",
        class: "ghost small",
        "aria-label": `Delete ${document.filename}`,
        onclick: async () => {
          if (!(await confirmAction(`Delete ${document.filename} and its passages?`))) return;
          try {
            await request("DELETE", `/api/documents/${document.id}`);
            refresh();
          } catch (error) {
            toast(error.message, "error");
          }
        },
      },
      "Delete",
    ),
  );
}
