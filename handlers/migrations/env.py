"""Alembic's environment: runs the revisions on the connection ``handlers.database.migrate`` passes.

That connection is already inside the transaction (and, on PostgreSQL, the advisory lock) that
``migrate`` opened, so every revision of one upgrade commits or rolls back together.
"""

from __future__ import annotations

from alembic import context

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run the migrations with handlers.database.migrate(url), which passes a connection")
context.configure(connection=connection, target_metadata=None)
with context.begin_transaction():
    context.run_migrations()
