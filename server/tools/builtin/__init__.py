"""The built-in tools (see base.py for how they are served)."""
