"""used_challenges: a login challenge is exchanged for a token once

Written by hand.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08 00:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('used_challenges',
    sa.Column('nonce', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('expires', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.PrimaryKeyConstraint('nonce')
    )
    op.create_index(op.f('ix_used_challenges_expires'), 'used_challenges', ['expires'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_used_challenges_expires'), table_name='used_challenges')
    op.drop_table('used_challenges')
