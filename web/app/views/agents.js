// Agents: the public ones, mine, and the form that creates or edits one (with its documents).
import { get, request } from "../api.js";
import { confirmAction, field, fill, h, toast } from "../dom.js";
import { documentsPanel } from "./documents.js";
import { agentCard } from "./home.js";

export async function renderAgents(main) {
  const [mine, shared] = await Promise.all([get("/api/agents/my"), get("/api/agents", { limit: 100 })]);
  const mineIds = new Set(mine.agents.map((agent) => agent.id));
  const others = shared.agents.filter((agent) => !mineIds.has(agent.id));
  fill(
    main,
    h("div", { class: "row between" }, h("h1", {}, "Agents"), h("a", { class: "button", href: "#/agents/new" }, "New agent")),
    h("h2", {}, "My agents"),
    mine.agents.length
      ? h("ul", { class: "cards" }, mine.agents.map((agent) => agentCard(agent, { editable: true })))
      : h("p", { class: "muted" }, "You have no agent yet."),
    h("h2", {}, "Public agents"),
    others.length ? h("ul", { class: "cards" }, others.map((agent) => agentCard(agent))) : h("p", { class: "muted" }, "No other public agent."),
  );
}

export async function renderAgentForm(main, agentId) {
  const [agent, catalogue] = await Promise.all([
    agentId ? get(`/api/agents/${agentId}`) : Promise.resolve(null),
    get("/api/models"),
  ]);
  const name = h("input", { name: "name", required: true, maxlength: 100, value: agent?.name || "" });
  const prompt = h("textarea", { name: "system_prompt", required: true, maxlength: 20000, rows: 6 }, agent?.system_prompt || "");
  const model = h(
    "select",
    { name: "model" },
    catalogue.models.map((m) => h("option", { value: m.key, selected: (agent?.model || "auto") === m.key }, m.name || m.key)),
  );
  const temperature = h("input", { name: "temperature", type: "number", min: 0, max: 2, step: 0.1, value: agent?.temperature ?? 0.7 });
  const isPublic = h("input", { name: "is_public", type: "checkbox", checked: Boolean(agent?.is_public) });
  const learn = h("input", { name: "learn", type: "checkbox", checked: Boolean(agent?.learn_from_interaction) });
  const problem = h("p", { class: "error", role: "alert", hidden: true });
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        problem.hidden = true;
        const body = {
          name: name.value.trim(),
          system_prompt: prompt.value,
          model: model.value,
          temperature: Number(temperature.value),
          is_public: isPublic.checked,
          learn_from_interaction: learn.checked,
        };
        try {
          const saved = agentId
            ? await request("PUT", `/api/agents/${agentId}`, { json: body })
            : await request("POST", "/api/agents", { json: body });
          toast(agentId ? "Agent saved" : "Agent created");
          if (!agentId) location.hash = `#/agents/${saved.id}`;
        } catch (error) {
          problem.hidden = false;
          problem.textContent = [error.message, ...error.fields.map((f) => `${f.field}: ${f.message || ""}`)].join(" — ");
        }
      },
    },
    field("Name", name),
    field("Instructions (system prompt)", prompt),
    h("div", { class: "row wrap" }, field("Model", model), field("Temperature", temperature, "0 to 2")),
    h("label", { class: "check" }, isPublic, " Public: everyone can find and use it"),
    h("label", { class: "check" }, learn, " Learn from conversations (remembers what users tell it)"),
    problem,
    h(
      "div",
      { class: "row" },
      h("button", { type: "submit" }, agentId ? "Save" : "Create agent"),
      agentId ? h("button", { type: "button", class: "ghost danger", onclick: () => removeAgent(agent) }, "Delete") : null,
    ),
  );
  fill(
    main,
    h("p", {}, h("a", { href: "#/agents" }, "← Agents")),
    h("h1", {}, agentId ? `Edit ${agent.name}` : "New agent"),
    form,
    agentId ? documentsPanel("agent", agentId) : h("p", { class: "muted" }, "Documents can be added once the agent exists."),
  );
  name.focus();
}

async function removeAgent(agent) {
  if (!(await confirmAction(`Delete the agent “${agent.name}”?`))) return;
  try {
    await request("DELETE", `/api/agents/${agent.id}`);
    location.hash = "#/agents";
  } catch (error) {
    toast(error.message, "error");
  }
}
