"""Conversations and their messages (FoyerGPT's chats, the Orchestrator's conversations).

models.py     the chats and messages tables
views.py      ChatView, MessageView: what servicers and other domains get (never rows)
history.py    a conversation's turns for the model, trimmed to its context window
service.py    ownership, listing, sending a message and recording the reply
access.py     whose a chat is, asked by the domains that attach things to chats
servicer.py   ChatService and MessageService over gRPC
domain.py     start_chats(): the domain as the server assembles it
"""
