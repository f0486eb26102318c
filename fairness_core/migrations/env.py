"""Alembic's entry point for the store's migrations.

The store runs them itself (:func:`fairness_core.store.upgrade`) on the
connection it opened, passed in ``config.attributes["connection"]``; no
alembic.ini is needed.
"""
from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
