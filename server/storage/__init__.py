"""Storage set-up shared by every domain: engine, declarative base, migrations."""

from server.storage.engine import Database, create_database
from server.storage.models import Base

__all__ = ["Base", "Database", "create_database"]
