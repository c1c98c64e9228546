"""Backups: a verified, portable archive of an instance, exported from a consistent snapshot
and imported through a plan (see service.py)."""
