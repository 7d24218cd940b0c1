"""Alembic's entry point for the PostgreSQL store: runs the revisions on the connection that
:func:`broker.sinks.postgres.upgrade` hands over (``config.attributes["connection"]``), inside the
transaction it opened (which holds the schema lock)."""

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
