"""Usage counts: one row per user, day (UTC), route and model, added to in one statement."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite

from server.openai_api.models import ApiUsage
from server.storage import Database


@dataclass(frozen=True, slots=True, kw_only=True)
class Use:
    """What requests of one user, route and model used on one day (UTC)."""

    user_id: int
    endpoint: str
    model: str
    day: str = ""
    requests: int = 1
    prompt_tokens: int = 0
    completion_tokens: int = 0


def today() -> str:
    return datetime.now(UTC).date().isoformat()


class UsageRepository:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def add(self, uses: list[Use]) -> None:
        """Add to the counts, in one transaction: upserts, so concurrent writers (replicas) never
        lose a count."""
        insert = postgresql.insert if self._database.dialect == "postgresql" else sqlite.insert
        columns = ApiUsage.__table__.c
        async with self._database.sessions() as session, session.begin():
            for use in uses:
                statement = insert(ApiUsage).values(
                    user_id=use.user_id,
                    day=use.day or today(),
                    endpoint=use.endpoint,
                    model=use.model[:100],
                    requests=use.requests,
                    prompt_tokens=use.prompt_tokens,
                    completion_tokens=use.completion_tokens,
                )
                statement = statement.on_conflict_do_update(
                    index_elements=[columns.user_id, columns.day, columns.endpoint, columns.model],
                    set_={
                        "requests": columns.requests + statement.excluded.requests,
                        "prompt_tokens": columns.prompt_tokens + statement.excluded.prompt_tokens,
                        "completion_tokens": columns.completion_tokens + statement.excluded.completion_tokens,
                    },
                )
                await session.execute(statement)

    async def list(self, user_id: int, *, days: int) -> list[ApiUsage]:
        async with self._database.sessions() as session:
            return list(await session.scalars(recent(user_id, days=days)))


def recent(user_id: int, *, days: int) -> Select[tuple[ApiUsage]]:
    """The user's rows of the last `days` days (today included), newest day first."""
    since = (datetime.now(UTC).date() - timedelta(days=days - 1)).isoformat()
    return (
        select(ApiUsage)
        .where(ApiUsage.user_id == user_id, ApiUsage.day >= since)
        .order_by(ApiUsage.day.desc(), ApiUsage.endpoint, ApiUsage.model)
    )
