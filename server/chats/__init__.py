"""Conversations and their messages (FoyerGPT's chats, the Orchestrator's conversations).

models.py     the chats and messages tables
history.py    a conversation's turns for the model, trimmed to its context window
service.py    ownership, listing, sending a message and recording the reply
servicer.py   ChatService and MessageService over gRPC
domain.py     start_chats(): the domain as the server assembles it
"""
