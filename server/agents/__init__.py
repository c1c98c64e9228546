"""Agents: a system prompt, a model and its settings, owned by a user, public or private.

models.py     the agents table
views.py      AgentView: an agent as servicers and other domains get it (never a row)
service.py    listing, visibility and ownership rules, validation, the per-user quota
access.py     who may use an agent, asked by the other domains too
servicer.py   AgentService over gRPC
domain.py     start_agents(): the domain as the server assembles it
"""
