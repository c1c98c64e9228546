"""Tools: an assistant reply keeps its tool calls and results; signed-in users may use the
tools that are safe by default.

`messages.tool_steps` holds [{"call": ToolCall, "result": ToolResult}] as JSON (the proto's
JSON names). The permissions `tools:*` (every tool that is not administrators' only),
`tool_sources:read` and `tool_sources:write` are declared, and `tools:*` is granted to the
built-in "user" role where it exists (a fresh database gets it when the roles are seeded).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

PERMISSIONS = {
    "tools:*": ("Use every tool that is not administrators' only", "tools", "*"),
    "tool_sources:read": ("See the MCP servers tools come from", "tool_sources", "read"),
    "tool_sources:write": ("Reconnect the MCP servers tools come from", "tool_sources", "write"),
}


def upgrade() -> None:
    op.add_column("messages", sa.Column("tool_steps", sa.JSON(), nullable=True))
    connection = op.get_bind()
    permissions = sa.table(
        "permissions",
        sa.column("id", sa.BigInteger),
        sa.column("name", sa.String),
        sa.column("description", sa.String),
        sa.column("resource", sa.String),
        sa.column("action", sa.String),
    )
    existing = set(connection.scalars(sa.select(permissions.c.name)))
    rows = [
        {"name": name, "description": description, "resource": resource, "action": action}
        for name, (description, resource, action) in PERMISSIONS.items()
        if name not in existing
    ]
    if rows:
        op.bulk_insert(permissions, rows)
    user_role = connection.scalar(sa.text("SELECT id FROM roles WHERE name = 'user'"))
    wildcard = connection.scalar(sa.text("SELECT id FROM permissions WHERE name = 'tools:*'"))
    if user_role is not None and wildcard is not None:
        granted = connection.scalar(
            sa.text("SELECT 1 FROM role_permissions WHERE role_id = :role AND permission_id = :permission"),
            {"role": user_role, "permission": wildcard},
        )
        if not granted:
            connection.execute(
                sa.text("INSERT INTO role_permissions (role_id, permission_id) VALUES (:role, :permission)"),
                {"role": user_role, "permission": wildcard},
            )


def downgrade() -> None:
    names = "('tools:*', 'tool_sources:read', 'tool_sources:write')"
    op.execute(
        f"DELETE FROM role_permissions WHERE permission_id IN (SELECT id FROM permissions WHERE name IN {names})"
    )
    op.execute(f"DELETE FROM permissions WHERE name IN {names}")
    op.drop_column("messages", "tool_steps")
