"""``responses``: the answers to a notice this bureau sent or received (ids, kind, the
responder's note and attachment references), as the SQLite store's schema 6.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE responses (
    by_bureau    TEXT NOT NULL,
    msg_id       TEXT NOT NULL,
    direction    TEXT NOT NULL,
    notice_id    TEXT NOT NULL,
    notice_type  TEXT NOT NULL,
    issuer       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    at           TEXT NOT NULL,
    note         TEXT,
    attachments  TEXT NOT NULL,
    in_reply_to  TEXT,
    recipients   TEXT NOT NULL,
    stored_at    TEXT NOT NULL,
    PRIMARY KEY (by_bureau, msg_id)
);
CREATE INDEX responses_notice ON responses (notice_id);
""".replace(" TEXT", ' TEXT COLLATE "C"')


def upgrade() -> None:
    """Create ``responses`` (empty)."""
    for statement in TABLES.split(";"):
        if statement.strip():
            op.execute(statement)


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError
