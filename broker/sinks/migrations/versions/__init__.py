"""The revisions of the PostgreSQL store's schema, oldest first (``0001``, ``0002``, ...)."""
