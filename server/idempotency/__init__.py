"""Idempotency keys on creating RPCs: a retried request never runs twice (see service.py)."""
