"""The chats' stack (a fast and a slow model on the Triton stand-in) serves the live tests too."""

from tests.chats.conftest import chat_stack, chat_triton, http

__all__ = ["chat_stack", "chat_triton", "http"]
