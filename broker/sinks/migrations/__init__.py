"""The PostgreSQL store's schema migrations (Alembic; docs/storage.md "Schema and migrations").

Each script under ``versions/`` is one revision of plain DDL; the database keeps its revision in
Alembic's ``alembic_version`` table. :mod:`broker.sinks.postgres` checks that row with psycopg on
every open and imports Alembic (and SQLAlchemy) only to create or upgrade the schema:
``nbx store migrate``, or the first open of an empty database.
"""

from pathlib import Path

#: the folder Alembic reads (``script_location``): ``env.py`` and ``versions/``
LOCATION = Path(__file__).resolve().parent
