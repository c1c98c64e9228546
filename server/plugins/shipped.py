"""The plugins shipped in Relais' plugins/ folder (tasks, hello), installed and enabled at the
first start of an instance. They come from Relais' own installation, as its code does, so they
need no signature (their `signed_by` is "shipped"). Removing one later is final: the first start
is recorded (system_settings "plugins.shipped"), and they are not installed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from server.plugins.bundle import Trust
from server.plugins.pack import pack
from server.plugins.service import PluginService
from server.storage import Database
from server.storage.queries import add_system_setting, system_setting

log = logging.getLogger("relais.plugins")

MARKER = "plugins.shipped"
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "plugins"


async def install_shipped(plugins: PluginService, database: Database, names: Sequence[str], directory: Path) -> None:
    """Pack, install and enable each of `names` once in the life of the instance."""
    if not names:
        return
    async with database.sessions() as session:
        if await system_setting(session, MARKER):
            return
    for name in names:
        try:
            data = await asyncio.to_thread(pack, directory / name)
            view, _ = await plugins.install_bundle(data, source="shipped", trust=Trust(shipped=True))
            await plugins.enable(view.id)
        except IntegrityError:
            continue  # another replica installed it at the same moment
        except Exception:
            log.exception("the shipped plugin %s could not be installed", name)
    try:
        async with database.sessions() as session, session.begin():
            add_system_setting(session, MARKER, ",".join(names))
    except IntegrityError:
        pass  # another replica recorded it first
