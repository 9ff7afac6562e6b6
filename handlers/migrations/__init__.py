"""Alembic revisions of the analytics database, shipped in the function code.

Run them with ``handlers.database.migrate(url)`` (``pulumi up`` does, through the analytics function's
``{"action": "migrate"}`` event; locally ``python -m devtools migrate --url URL``). The configuration is
built in code (``script_location`` is this directory), so no ``alembic.ini`` is needed.

A new revision: copy the newest file in ``versions/``, give it the next number as ``revision`` and the
previous one as ``down_revision``, and raise ``handlers.database.HEAD`` to it.
"""
