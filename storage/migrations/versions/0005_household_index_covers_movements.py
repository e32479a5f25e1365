"""entries: the household index also holds kind, time, ledger, credit and amount, so a household page's
chart (its net points per month) and its kind filter are read from the index alone, not from hundreds of
entry rows scattered over the log

Written by hand.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 14:30:00
"""

from __future__ import annotations

from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None

NARROW = ['village_id', 'household', 'idx']
COVERING = [*NARROW, 'kind', 'time', 'ledger', 'credit', 'amount']


# Plain index operations (no batch mode): SQLite drops and creates indexes in place, and the entries table,
# with its append-only triggers, is never copied.
def upgrade() -> None:
    op.drop_index('ix_entries_household', table_name='entries')
    op.create_index('ix_entries_household', 'entries', COVERING, unique=False)


def downgrade() -> None:
    op.drop_index('ix_entries_household', table_name='entries')
    op.create_index('ix_entries_household', 'entries', NARROW, unique=False)
