"""witness: the village server's cosignatures (what its township's witness cosigned), and the township node's
witness memory (witnessed_logs, with where to mirror each log from) and evidence of refused checkpoints
(witness_evidence)

Written by hand. cosignatures and witness_evidence are append-only (triggers, as the log tables);
witnessed_logs is updated in place, one row per village log, under a row lock.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08 02:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

APPEND_ONLY = ("cosignatures", "witness_evidence")


def upgrade() -> None:
    op.create_table('cosignatures',
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('witness', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('line', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('cosigned_at', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['village_id'], ['villages.id'], ),
    sa.PrimaryKeyConstraint('village_id', 'witness', 'size')
    )
    op.create_table('witnessed_logs',
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('origin_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('log_keys', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('root', sa.LargeBinary(), nullable=True),
    sa.Column('note', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.Column('cosigned_at', sa.BigInteger(), nullable=False),
    sa.Column('village', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True),
    sa.Column('tiles_url', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
    sa.Column('problem', sqlmodel.sql.sqltypes.AutoString(), nullable=True),
    sa.PrimaryKeyConstraint('origin'),
    sa.UniqueConstraint('origin_hash')
    )
    op.create_table('witness_evidence',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('origin', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('received', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('reason', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.Column('request', sqlmodel.sql.sqltypes.AutoString(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_witness_evidence_origin'), 'witness_evidence', ['origin'], unique=False)
    _append_only_triggers()


def _append_only_triggers() -> None:
    """As the log tables (0001): UPDATE and DELETE (and TRUNCATE on PostgreSQL) are refused by the database."""
    if op.get_bind().dialect.name == "sqlite":
        for table in APPEND_ONLY:
            for action in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only: {action} refused'); END")
        return
    for table in APPEND_ONLY:
        op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                   "FOR EACH ROW EXECUTE FUNCTION villageledger_append_only()")
        op.execute(f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table} "
                   "FOR EACH STATEMENT EXECUTE FUNCTION villageledger_append_only()")


def downgrade() -> None:
    for table in APPEND_ONLY:
        if op.get_bind().dialect.name == "sqlite":
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(f"DROP TRIGGER {table}_no_delete")
        else:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_truncate ON {table}")
    op.drop_index(op.f('ix_witness_evidence_origin'), table_name='witness_evidence')
    op.drop_table('witness_evidence')
    op.drop_table('witnessed_logs')
    op.drop_table('cosignatures')
