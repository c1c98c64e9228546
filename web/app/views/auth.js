// Sign in, and create an account where the server allows it: it answers 403 when it does not, and
// the app then offers sign-in only, for the rest of this tab's life (the operator may open it later).
import { register, signIn } from "../api.js";
import { field, fill, h, toast } from "../dom.js";

const CLOSED = "relais.registration-closed";

export function renderAuth(main, mode = "signin") {
  const closed = sessionStorage.getItem(CLOSED) === "1";
  const tab = (name, label) =>
    h(
      "button",
      { type: "button", role: "tab", "aria-selected": String(mode === name), class: "tab", onclick: () => renderAuth(main, name) },
      label,
    );
  fill(
    main,
    h(
      "section",
      { class: "auth card", "aria-labelledby": "auth-title" },
      h("h1", { id: "auth-title" }, mode === "signin" ? "Sign in to Relais" : "Create an account"),
      closed ? null : h("div", { role: "tablist", class: "tabs" }, tab("signin", "Sign in"), tab("register", "Create account")),
      mode === "signin" || closed ? signInForm() : registerForm(main),
    ),
  );
  main.querySelector("input")?.focus();
}

function errorBox() {
  return h("p", { class: "error", role: "alert", hidden: true });
}

function showError(box, error) {
  box.hidden = false;
  const fields = error.fields?.map((f) => `${f.field}: ${f.message || f.description || ""}`) || [];
  box.textContent = [error.message, ...fields].join(" — ");
}

function signInForm() {
  const login = h("input", { name: "login", autocomplete: "username", required: true });
  const password = h("input", { name: "password", type: "password", autocomplete: "current-password", required: true });
  const problem = errorBox();
  const submit = h("button", { type: "submit" }, "Sign in");
  return h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        submit.disabled = true;
        problem.hidden = true;
        try {
          await signIn(login.value.trim(), password.value);
        } catch (error) {
          showError(problem, error);
          password.select();
        } finally {
          submit.disabled = false;
        }
      },
    },
    field("Email or username", login),
    field("Password", password),
    problem,
    submit,
  );
}

function registerForm(main) {
  const email = h("input", { name: "email", type: "email", autocomplete: "email", required: true });
  const name = h("input", { name: "full_name", autocomplete: "name" });
  const password = h("input", { name: "password", type: "password", autocomplete: "new-password", required: true, minlength: 8 });
  const problem = errorBox();
  return h(
    "form",
    {
      onsubmit: async (event) => {
        event.preventDefault();
        problem.hidden = true;
        try {
          await register({ email: email.value.trim(), full_name: name.value.trim(), password: password.value });
          await signIn(email.value.trim(), password.value);
          toast("Welcome to Relais");
        } catch (error) {
          if (error.status === 403) {
            sessionStorage.setItem(CLOSED, "1");
            toast(error.message, "error");
            renderAuth(main, "signin");
            return;
          }
          showError(problem, error);
        }
      },
    },
    field("Email", email),
    field("Name", name),
    field("Password", password, "At least 8 characters, with a letter and a digit"),
    problem,
    h("button", { type: "submit" }, "Create account"),
  );
}
