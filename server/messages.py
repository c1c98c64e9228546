"""Messages told to people, in the caller's language (Accept-Language, forwarded by the bridge;
any gRPC client may send it as metadata too).

French is the documents' language and answers callers who state no preference, so the
documents' examples get the texts they print ("Déconnexion réussie"); English for those who
prefer it. Machine-read values (codes, field names) are never translated.

    say("signed_out")                 # "Déconnexion réussie", or "Signed out" for Accept-Language: en
    say("agent_deleted", id=3)        # "Agent 3 supprimé"
"""

from __future__ import annotations

from server.interceptors.call import current_call

LANGUAGES = ("fr", "en")
DEFAULT_LANGUAGE = "fr"

CATALOGUE: dict[str, dict[str, str]] = {
    "signed_out": {"fr": "Déconnexion réussie", "en": "Signed out"},
    "no_session": {"fr": "Aucune session à terminer (clé d'API)", "en": "No session to end (API key)"},
    "password_changed": {"fr": "Mot de passe modifié", "en": "Password changed"},
    "role_assigned": {"fr": "Rôle assigné avec succès", "en": "Role assigned successfully"},
    "agent_deleted": {"fr": "Agent {id} supprimé", "en": "Agent {id} deleted"},
    "chat_deleted": {"fr": "Chat {id} supprimé", "en": "Chat {id} deleted"},
    "conversation_deleted": {"fr": "Conversation {id} supprimée", "en": "Conversation {id} deleted"},
    "memory_deleted": {"fr": "Mémoire {id} supprimée", "en": "Memory {id} deleted"},
    "document_deleted": {"fr": "Document {id} supprimé", "en": "Document {id} deleted"},
}


def preferred_language(accept_language: str) -> str:
    """The first of LANGUAGES the header prefers (RFC 9110 weights), DEFAULT_LANGUAGE if none.

    >>> preferred_language("en-GB,en;q=0.9,fr;q=0.8")
    'en'
    >>> preferred_language("de, fr;q=0.5, en;q=0.4")
    'fr'
    """
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        weight = 1.0
        if params.strip().startswith("q="):
            try:
                weight = float(params.strip()[2:])
            except ValueError:
                weight = 0.0
        language = tag.strip().lower().split("-")[0]
        if weight > 0 and language in (*LANGUAGES, "*"):
            ranked.append((-weight, index, DEFAULT_LANGUAGE if language == "*" else language))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE


def say(key: str, **values: object) -> str:
    """The message `key` in the current caller's language."""
    try:
        header = current_call().credentials.accept_language
    except LookupError:  # outside a call (start-up, tests of the service alone)
        header = ""
    return CATALOGUE[key][preferred_language(header)].format(**values)
