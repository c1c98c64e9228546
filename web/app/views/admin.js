// Administration: users (activate, deactivate, role, delete), roles and their permissions, API keys,
// and the tabs other areas register (plugins, tasks: see registerAdminTab).
import { get, request, session } from "../api.js";
import { confirmAction, field, fill, formatDate, h, toast } from "../dom.js";

// key -> {label, render(panel), visible(user)}, in the order shown.
const TABS = new Map();

/**
 * Add a tab to the administration area: `render(panel)` fills the tab's panel (async allowed),
 * `visible(user)` decides who sees it (everyone who reaches the area by default). A feature
 * brings its own module, which calls this and is imported by main.js:
 *
 *   registerAdminTab("plugins", "Plugins", renderPlugins, { visible: (user) => can(user, "plugins:read") });
 */
export function registerAdminTab(key, label, render, { visible = () => true } = {}) {
  TABS.set(key, { label, render, visible });
}

registerAdminTab("users", "Users", users);
registerAdminTab("roles", "Roles", roles);
registerAdminTab("keys", "API keys", keys);

export async function renderAdmin(main, tab) {
  const user = session()?.user;
  const shown = [...TABS].filter(([, entry]) => entry.visible(user));
  const [key, entry] = shown.find(([name]) => name === tab) || shown[0];
  const panel = h("div", { role: "tabpanel", "aria-label": entry.label });
  fill(
    main,
    h("h1", {}, "Administration"),
    h(
      "nav",
      { class: "tabs", "aria-label": "Administration" },
      shown.map(([name, { label }]) => h("a", { href: `#/admin/${name}`, class: "tab", "aria-current": name === key ? "page" : null }, label)),
    ),
    panel,
  );
  await entry.render(panel);
}

async function act(promise, done) {
  try {
    await promise;
    await done();
  } catch (error) {
    toast(error.message, "error");
  }
}

async function users(panel) {
  const search = h("input", { type: "search", "aria-label": "Search users", placeholder: "Search users" });
  const table = h("div", { class: "table-wrap" });
  const roleList = await get("/admin/roles", { limit: 100 }).catch(() => ({ items: [] }));
  const refresh = async () => {
    const page = await get("/admin/users", { search: search.value.trim(), limit: 100 });
    fill(table, usersTable(page.items, roleList.items, refresh));
  };
  let timer = 0;
  search.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(refresh, 250); });
  fill(panel, search, table);
  await refresh();
}

function usersTable(items, roles, refresh) {
  const me = session()?.user?.id;
  return h(
    "table",
    {},
    h("caption", { class: "visually-hidden" }, "Users"),
    h("thead", {}, h("tr", {}, ["Email", "Name", "Role", "Active", "Last sign-in", ""].map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      {},
      items.map((user) => {
        const role = h(
          "select",
          { "aria-label": `Role of ${user.email}`, disabled: user.id === me },
          roles.map((r) => h("option", { value: r.name, selected: user.roles.includes(r.name) }, r.name)),
        );
        role.addEventListener("change", () => act(request("PUT", `/admin/users/${user.id}/role`, { json: { role: role.value } }), refresh));
        const toggle = user.is_active ? "deactivate" : "activate";
        return h(
          "tr",
          {},
          h("td", {}, user.email),
          h("td", {}, user.full_name || user.username),
          h("td", {}, role),
          h("td", {}, user.is_active ? "yes" : "no"),
          h("td", {}, formatDate(user.last_login)),
          h(
            "td",
            { class: "row" },
            user.id === me
              ? h("span", { class: "muted" }, "you")
              : [
                  h("button", { type: "button", class: "ghost small", onclick: () => act(request("POST", `/admin/users/${user.id}/${toggle}`), refresh) }, user.is_active ? "Deactivate" : "Activate"),
                  h(
                    "button",
                    {
                      type: "button",
                      class: "ghost small danger",
                      "aria-label": `Delete ${user.email}`,
                      onclick: async () => {
                        if (await confirmAction(`Delete ${user.email}, their sessions and API keys?`)) act(request("DELETE", `/admin/users/${user.id}`), refresh);
                      },
                    },
                    "Delete",
                  ),
                ],
          ),
        );
      }),
    ),
  );
}

async function roles(panel) {
  const [page, permissions] = await Promise.all([get("/admin/roles", { limit: 100 }), get("/admin/permissions", { limit: 100 })]);
  const name = h("input", { required: true, pattern: "[a-z0-9_-]+" });
  const description = h("input", {});
  const grants = h(
    "fieldset",
    { class: "grants" },
    h("legend", {}, "Permissions"),
    permissions.items.map((p) => h("label", { class: "check" }, h("input", { type: "checkbox", value: p.name }), ` ${p.name}`)),
  );
  const refresh = () => roles(panel);
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: (event) => {
        event.preventDefault();
        const chosen = [...grants.querySelectorAll("input:checked")].map((input) => input.value);
        act(request("POST", "/admin/roles", { json: { name: name.value.trim(), description: description.value, permissions: chosen } }), refresh);
      },
    },
    h("h2", {}, "New role"),
    field("Name", name, "Lowercase letters, digits, '_' and '-'"),
    field("Description", description),
    grants,
    h("button", { type: "submit" }, "Create role"),
  );
  fill(
    panel,
    h(
      "ul",
      { class: "cards" },
      page.items.map((role) =>
        h(
          "li",
          { class: "card" },
          h("h3", {}, role.name),
          h("p", { class: "muted" }, role.description),
          h("p", { class: "meta" }, `${role.users_count} users · ${role.permissions.map((p) => p.name).join(", ") || "no permission"}`),
          h(
            "button",
            {
              type: "button",
              class: "ghost small danger",
              "aria-label": `Delete role ${role.name}`,
              onclick: async () => {
                if (await confirmAction(`Delete the role ${role.name}?`)) act(request("DELETE", `/admin/roles/${role.id}`), refresh);
              },
            },
            "Delete",
          ),
        ),
      ),
    ),
    form,
  );
}

async function keys(panel) {
  const page = await get("/api/keys");
  const name = h("input", { required: true, maxlength: 100 });
  const days = h("input", { type: "number", min: 0, value: 0 });
  const secret = h("div", { role: "status", "aria-live": "polite" });
  const refresh = () => keys(panel);
  const form = h(
    "form",
    {
      class: "card",
      onsubmit: async (event) => {
        event.preventDefault();
        try {
          const created = await request("POST", "/api/keys", { json: { name: name.value.trim(), expires_in_days: Number(days.value) } });
          await keys(panel);
          panel.prepend(
            h("div", { class: "card notice" }, h("p", {}, "Copy this key now: it will not be shown again."), h("code", { class: "secret" }, created.key)),
          );
        } catch (error) {
          toast(error.message, "error");
        }
      },
    },
    h("h2", {}, "New API key"),
    field("Name", name),
    field("Expires after (days)", days, "0: never"),
    h("button", { type: "submit" }, "Create key"),
  );
  fill(
    panel,
    secret,
    h(
      "div",
      { class: "table-wrap" },
      h(
        "table",
        {},
        h("caption", { class: "visually-hidden" }, "API keys"),
        h("thead", {}, h("tr", {}, ["Name", "Prefix", "Created", "Expires", "Last used", ""].map((t) => h("th", { scope: "col" }, t)))),
        h(
          "tbody",
          {},
          page.items.map((key) =>
            h(
              "tr",
              {},
              h("td", {}, key.name),
              h("td", {}, h("code", {}, key.prefix)),
              h("td", {}, formatDate(key.created_at)),
              h("td", {}, formatDate(key.expires_at) || "never"),
              h("td", {}, formatDate(key.last_used_at) || "never"),
              h(
                "td",
                {},
                h(
                  "button",
                  {
                    type: "button",
                    class: "ghost small danger",
                    "aria-label": `Revoke ${key.name}`,
                    onclick: async () => {
                      if (await confirmAction(`Revoke the key ${key.name}?`, "Revoke")) act(request("DELETE", `/api/keys/${key.id}`), refresh);
                    },
                  },
                  "Revoke",
                ),
              ),
            ),
          ),
        ),
      ),
    ),
    form,
  );
}
