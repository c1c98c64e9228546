"""rag.reindex: index the local assistant's corpus directory, as POST /rag/reindex does."""

from __future__ import annotations

from typing import Any

from server.retrieval.service import KnowledgeBase, ReindexReport
from server.tasks.actions import Action, ActionContext

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "full": {
            "type": "boolean",
            "default": True,
            "description": "Read every file again (true), or only new and changed ones (false).",
        },
        "path": {
            "type": "string",
            "maxLength": 1000,
            "default": "",
            "description": "A file or folder inside the corpus directory; the whole corpus when empty.",
        },
    },
    "additionalProperties": False,
}


def reindex_action(knowledge: KnowledgeBase) -> Action:
    async def reindex(full: bool, path: str) -> dict[str, Any]:
        report = ReindexReport()
        async for progress in knowledge.reindex(path=path, full=full):
            report = progress
        return {
            "indexed": report.indexed,
            "unchanged": report.unchanged,
            "removed": report.removed,
            "chunks": report.chunks,
            "failed": [{"path": path, "reason": reason} for path, reason in report.failed],
            "seconds": round(report.seconds, 3),
        }

    async def run(context: ActionContext) -> dict[str, Any]:
        params = context.params
        return await context.step("reindex", reindex, bool(params.get("full", True)), str(params.get("path", "")))

    return Action(
        name="rag.reindex",
        description="Index the corpus directory (or a file or folder in it), as POST /rag/reindex.",
        params_schema=SCHEMA,
        permission="corpus:write",
        run=run,
    )
