"""The agent loop: the model proposes tool calls, the tools run, the model continues, until
it answers. One implementation behind every reply (see loop.py)."""
