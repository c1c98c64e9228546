"""Agents: a system prompt, a model and its settings, owned by a user, public or private.

models.py     the agents table
service.py    listing, visibility and ownership rules, validation, the per-user quota
servicer.py   AgentService over gRPC
"""
