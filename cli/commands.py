"""The CLI's client commands: everything a person does with a running server, over gRPC.

relais login                      # prompts for email and password, saves a token (0600)
relais ask "Why is the sky blue?" # one answer, streamed; `echo … | relais ask` reads stdin
relais chat --agent 3             # interactive; /new, /exit; Ctrl-C stops a reply
relais models | agents | health
relais keys create NAME --scope corpus:write | keys list | keys revoke ID
relais users list --search ann | users activate ID | users deactivate ID   # administrators
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Annotated

import typer
from relais_client import RelaisClient
from relais_typed.relais.v1 import (
    ActivateUserRequest,
    ChatTurn,
    ConverseRequest,
    CreateApiKeyRequest,
    CreateChatRequest,
    DeactivateUserRequest,
    FinalMessage,
    GenerateRequest,
    GetHealthRequest,
    ListAgentsRequest,
    ListApiKeysRequest,
    ListModelsRequest,
    ListMyAgentsRequest,
    ListUsersRequest,
    LoginRequest,
    LogoutRequest,
    RevokeApiKeyRequest,
    StreamEvent,
    StreamMessageRequest,
    TurnRole,
)

from cli import credentials, remote

Server = Annotated[str | None, typer.Option(help="The gRPC server HOST:PORT [RELAIS_SERVER, or the login's].")]


def register(app: typer.Typer) -> None:
    for command in (login, logout, ask, chat, models, agents, health):
        app.command()(command)
    app.add_typer(keys, name="keys")
    app.add_typer(users, name="users")


def login(
    server: Server = None,
    email: Annotated[str | None, typer.Option(help="Your email (or username); prompted when absent.")] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
) -> None:
    """Sign in and save a token for the other commands (never the password)."""
    email = email or typer.prompt("Email")
    password = sys.stdin.readline().rstrip("\n") if password_stdin else typer.prompt("Password", hide_input=True)
    target = remote.resolve_server(server)
    with remote.client(target, anonymous=True) as relais:
        answer = relais.auth.login(LoginRequest(user=email, password=password))
    path = credentials.save(
        credentials.StoredLogin(
            server=target, email=email, access_token=answer.access_token, refresh_token=answer.refresh_token
        )
    )
    typer.echo(f"logged in to {target} as {answer.user.email if answer.user else email}; token saved in {path}")


def logout(server: Server = None) -> None:
    """End the saved session on the server and forget its token."""
    if credentials.load() is None:
        typer.echo("not logged in")
        return
    with remote.client(server) as relais:
        relais.auth.logout(LogoutRequest())
    credentials.forget()
    typer.echo("logged out")


def ask(
    prompt: Annotated[
        str | None, typer.Argument(help="The question; read from standard input when absent or '-'.")
    ] = None,
    model: Annotated[str, typer.Option(help="Model key (see `relais models`).")] = "auto",
    max_tokens: Annotated[int | None, typer.Option(help="Longest answer, in tokens.")] = None,
    server: Server = None,
) -> None:
    """Ask one question and print the answer as it is generated."""
    text = sys.stdin.read() if prompt in (None, "-") else prompt
    if not text.strip():
        raise typer.BadParameter("the question is empty", param_hint="PROMPT")
    request = GenerateRequest(
        messages=[ChatTurn(role=TurnRole.USER, content=text.strip())], model=model, max_tokens=max_tokens
    )
    with remote.client(server) as relais:
        print_stream(relais.inference.generate_stream(request, timeout=remote.STREAM_TIMEOUT_SECONDS))


def chat(
    agent: Annotated[int | None, typer.Option(help="Talk to this agent (its id, see `relais agents`).")] = None,
    model: Annotated[str, typer.Option(help="Model key, for a conversation without an agent.")] = "auto",
    server: Server = None,
) -> None:
    """Talk with a model or an agent. /new starts a new conversation, /exit (or Ctrl-D) leaves,
    Ctrl-C stops the reply being written."""
    with remote.client(server) as relais:
        conversation = Conversation(relais, agent=agent, model=model)
        typer.echo("/new starts a new conversation, /exit leaves, Ctrl-C stops a reply.")
        while True:
            try:
                line = input("you> ")
            except (EOFError, KeyboardInterrupt):
                typer.echo()
                return
            if line.strip() == "/exit":
                return
            if line.strip() == "/new":
                conversation.restart()
                typer.echo("(new conversation)")
            elif line.strip():
                sys.stdout.write("assistant> ")
                conversation.send(line.strip())


class Conversation:
    """One chat's state: an agent's chat (FoyerGPT messages) or a model conversation (Orchestrator)."""

    def __init__(self, relais: RelaisClient, *, agent: int | None, model: str) -> None:
        self._relais, self._agent, self._model = relais, agent, model
        self._chat_id: int | None = None

    def restart(self) -> None:
        self._chat_id = None

    def send(self, text: str) -> None:
        if self._agent is not None:
            if self._chat_id is None:
                self._chat_id = self._relais.chats.create_chat(CreateChatRequest(agent_id=self._agent)).id
            request = StreamMessageRequest(chat_id=self._chat_id, message=text)
            print_stream(self._relais.messages.stream_message(request, timeout=remote.STREAM_TIMEOUT_SECONDS))
            return
        conversation_id = self._chat_id or 0
        converse = ConverseRequest(message=text, model=self._model, conversation_id=conversation_id, stream=True)
        final = print_stream(self._relais.conversations.converse(converse, timeout=remote.STREAM_TIMEOUT_SECONDS))
        if final is not None and final.chat_id:
            self._chat_id = final.chat_id


def print_stream(call: Iterator[StreamEvent]) -> FinalMessage | None:
    """Write each token of a stream of the event family as it comes, and return its final
    message. Ctrl-C cancels the call (the server stops generating); an error event is one
    `error:` line and exit 1. `call` is what the typed stubs return for a stream: grpcio's
    call, an iterator with cancel()."""
    final = None
    try:
        for event in call:
            if event.token is not None:
                sys.stdout.write(event.token.text)
                sys.stdout.flush()
            elif event.final is not None:
                final = event.final
            elif event.error is not None:
                sys.stdout.write("\n")
                typer.echo(f"error: {event.error.message}", err=True)
                raise typer.Exit(1)
    except KeyboardInterrupt:
        call.cancel()  # type: ignore[attr-defined]
        sys.stdout.write(" [stopped]")
    sys.stdout.write("\n")
    return final


def models(server: Server = None) -> None:
    """The models you can pass as --model."""
    with remote.client(server) as relais:
        listed = relais.models.list_models(ListModelsRequest()).models
    print_table(["key", "backend", "context", "name"], ([m.key, m.backend, m.context_window, m.name] for m in listed))


def agents(
    mine: Annotated[bool, typer.Option("--mine", help="Only your own agents (private ones included).")] = False,
    server: Server = None,
) -> None:
    """Public agents, or your own."""
    with remote.client(server) as relais:
        page = (
            relais.agents.list_my_agents(ListMyAgentsRequest())
            if mine
            else relais.agents.list_agents(ListAgentsRequest(limit=100))
        )
    rows = ([a.id, a.name, a.model, "public" if a.is_public else "private"] for a in page.agents)
    print_table(["id", "name", "model", "visibility"], rows)


def health(server: Server = None) -> None:
    """The server's measured health; exit status 1 unless healthy."""
    with remote.client(server, anonymous=True) as relais:
        report = relais.system.get_health(GetHealthRequest())
    status = report.status.name.lower()
    typer.echo(
        f"{status}  version {report.version}  uptime {report.uptime}s  database {'ok' if report.db_ok else 'down'}"
    )
    if status != "healthy":
        raise typer.Exit(1)


keys = typer.Typer(help="Your API keys.", no_args_is_help=True)


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for.")],
    scope: Annotated[list[str] | None, typer.Option(help="Limit the key to a permission (repeatable).")] = None,
    days: Annotated[int, typer.Option(help="Days until it expires; never when 0.")] = 0,
    server: Server = None,
) -> None:
    """Create a key; its secret is printed this once."""
    with remote.client(server) as relais:
        made = relais.api_keys.create_api_key(CreateApiKeyRequest(name=name, scopes=scope or [], expires_in_days=days))
    typer.echo(made.key)
    typer.echo(
        f"key {made.api_key.id if made.api_key else '?'} created; keep the secret above, it is not shown again",
        err=True,
    )


@keys.command("list")
def keys_list(
    revoked: Annotated[bool, typer.Option("--revoked", help="Include revoked keys.")] = False, server: Server = None
) -> None:
    """Your keys (never their secrets)."""
    with remote.client(server) as relais:
        listed = relais.api_keys.list_api_keys(ListApiKeysRequest(include_revoked=revoked)).items
    rows = ([k.id, k.name, k.prefix, ",".join(k.scopes) or "all", "active" if k.active else "revoked"] for k in listed)
    print_table(["id", "name", "prefix", "scopes", "state"], rows)


@keys.command("revoke")
def keys_revoke(key_id: Annotated[int, typer.Argument(help="The key's id.")], server: Server = None) -> None:
    """Revoke a key at once."""
    with remote.client(server) as relais:
        relais.api_keys.revoke_api_key(RevokeApiKeyRequest(id=key_id))
    typer.echo(f"key {key_id} revoked")


users = typer.Typer(help="Accounts (administrators).", no_args_is_help=True)


@users.command("list")
def users_list(
    search: Annotated[str, typer.Option(help="Match email, username, name or trigramme.")] = "",
    limit: Annotated[int, typer.Option(min=1, max=100)] = 50,
    server: Server = None,
) -> None:
    """Accounts, newest first."""
    with remote.client(server) as relais:
        page = relais.admin_users.list_users(ListUsersRequest(search=search, limit=limit))
    rows = ([u.id, u.email, ",".join(u.roles), "active" if u.is_active else "inactive"] for u in page.items)
    print_table(["id", "email", "roles", "state"], rows)


@users.command("activate")
def users_activate(user_id: int, server: Server = None) -> None:
    """Let an account sign in again."""
    with remote.client(server) as relais:
        relais.admin_users.activate_user(ActivateUserRequest(user_id=user_id))
    typer.echo(f"user {user_id} activated")


@users.command("deactivate")
def users_deactivate(user_id: int, server: Server = None) -> None:
    """Stop an account from signing in; its sessions end at once."""
    with remote.client(server) as relais:
        relais.admin_users.deactivate_user(DeactivateUserRequest(user_id=user_id))
    typer.echo(f"user {user_id} deactivated")


def print_table(headers: list[str], rows: Iterable[Iterable[object]]) -> None:
    lines = [[str(cell) for cell in row] for row in rows]
    widths = [max([len(h), *(len(line[i]) for line in lines)]) for i, h in enumerate(headers)]
    for line in [headers, *lines]:
        typer.echo("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
