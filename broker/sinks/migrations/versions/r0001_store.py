"""The store: notices, the delivery log and replay guard, statements, facts, held packages, flags,
what was sent and the receipts, the audit log and its checkpoints (the tables of the SQLite
store's schema 5, in PostgreSQL types).

Every text column uses the "C" collation: ids, codes and ISO 8601 times sort byte by byte, as
in SQLite, whatever the database's locale.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TABLES = """
CREATE TABLE notices (
    notice_id      TEXT NOT NULL,
    sender         TEXT NOT NULL,
    notice_type    TEXT NOT NULL,
    version        INTEGER NOT NULL,
    status         TEXT NOT NULL,
    view           TEXT,
    withheld       TEXT,
    policy         TEXT NOT NULL,
    msg_id         TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    state          TEXT NOT NULL DEFAULT 'actionable',
    state_reason   TEXT,
    statement_hash TEXT,
    review         INTEGER NOT NULL DEFAULT 0,
    retain_until   TEXT,
    expiry_receipt TEXT,
    PRIMARY KEY (sender, notice_id)
);
CREATE INDEX notices_retain ON notices (retain_until);
CREATE INDEX notices_id ON notices (notice_id);
CREATE TABLE deliveries (
    msg_id       TEXT NOT NULL,
    notice_id    TEXT NOT NULL,
    sender       TEXT NOT NULL,
    kind         TEXT NOT NULL,
    topic        TEXT NOT NULL,
    partition    INTEGER NOT NULL,
    "offset"     BIGINT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT,
    at           TEXT NOT NULL,
    seq          BIGINT GENERATED ALWAYS AS IDENTITY,
    PRIMARY KEY (sender, msg_id)
);
CREATE TABLE statements (
    sender         TEXT NOT NULL,
    msg_id         TEXT NOT NULL,
    notice_id      TEXT NOT NULL,
    statement_hash TEXT NOT NULL,
    audience       TEXT,
    PRIMARY KEY (sender, msg_id)
);
CREATE INDEX statements_notice ON statements (sender, notice_id);
CREATE TABLE facts (
    by_bureau      TEXT NOT NULL,
    msg_id         TEXT NOT NULL,
    kind           TEXT NOT NULL,
    subject_sender TEXT NOT NULL,
    notice_id      TEXT NOT NULL,
    statement_hash TEXT,
    subject_msg_id TEXT,
    decision       TEXT,
    grounds        TEXT,
    case_ref       TEXT,
    reason         TEXT,
    at             TEXT NOT NULL,
    PRIMARY KEY (by_bureau, msg_id)
);
CREATE INDEX facts_notice ON facts (subject_sender, notice_id);
CREATE TABLE held (
    topic          TEXT NOT NULL,
    partition      INTEGER NOT NULL,
    "offset"       BIGINT NOT NULL,
    statement_hash TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    value          BYTEA NOT NULL,
    headers        TEXT NOT NULL,
    PRIMARY KEY (topic, partition, "offset")
);
CREATE INDEX held_statement ON held (statement_hash);
CREATE TABLE flags (
    sender         TEXT NOT NULL,
    msg_id         TEXT NOT NULL,
    notice_id      TEXT NOT NULL,
    flags          TEXT NOT NULL,
    PRIMARY KEY (sender, msg_id)
);
CREATE TABLE sent (
    msg_id         TEXT NOT NULL,
    notice_id      TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    kind           TEXT NOT NULL,
    status         TEXT NOT NULL,
    reason         TEXT,
    at             TEXT NOT NULL,
    statement_hash TEXT,
    notice_type    TEXT,
    deadline       TEXT,
    retain_until   TEXT,
    origin         TEXT,
    body           TEXT,
    PRIMARY KEY (msg_id, recipient)
);
CREATE INDEX sent_notice ON sent (notice_id);
CREATE TABLE receipts (
    msg_id         TEXT NOT NULL,
    recipient      TEXT NOT NULL,
    notice_id      TEXT NOT NULL,
    status         TEXT NOT NULL,
    reason         TEXT,
    at             TEXT NOT NULL,
    PRIMARY KEY (msg_id, recipient, status)
);
CREATE INDEX receipts_notice ON receipts (notice_id);
CREATE TABLE audit (
    seq            BIGINT PRIMARY KEY,
    at             TEXT NOT NULL,
    action         TEXT NOT NULL,
    notice_id      TEXT,
    msg_id         TEXT,
    sender         TEXT,
    notice_type    TEXT,
    kind           TEXT,
    bureaus        TEXT NOT NULL,
    operator       TEXT,
    purpose        TEXT,
    outcome        TEXT,
    reason         TEXT,
    prev           TEXT NOT NULL,
    hash           TEXT NOT NULL,
    source         TEXT
);
CREATE INDEX audit_at ON audit (at);
CREATE UNIQUE INDEX audit_source ON audit (source) WHERE source IS NOT NULL;
CREATE TABLE audit_checkpoints (
    count          BIGINT PRIMARY KEY,
    head           TEXT NOT NULL,
    at             TEXT NOT NULL,
    bureau         TEXT NOT NULL,
    kid            TEXT NOT NULL,
    signature      TEXT NOT NULL
);
""".replace(" TEXT", ' TEXT COLLATE "C"')

#: the audit log is append-only: an update, a delete or a truncate is refused
APPEND_ONLY = (
    "CREATE FUNCTION nbx_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$",
    "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION nbx_audit_append_only()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION nbx_audit_append_only()",
)


def upgrade() -> None:
    """Create the tables, their indexes and the audit log's guards."""
    for statement in TABLES.split(";"):
        if statement.strip():
            op.execute(statement)
    for statement in APPEND_ONLY:
        op.execute(statement)


def downgrade() -> None:
    """Not supported: restore the backup taken before the upgrade."""
    raise NotImplementedError
