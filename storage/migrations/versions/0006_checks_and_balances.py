"""checks and balances: the rules a log is written under and its latest entry time (village_state), who
appointed each member and added each key (the independence of cosigners), and several desk keys a village
(a replacement desk key is made before the township registers it)

Written by hand. Existing logs keep rules 1; ``villageledger rebuild`` fills the new columns from the
entries (until then they are empty, which only rules 2 logs read).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 23:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def _desk_keys(name: str, primary_key: list[str]) -> None:
    op.create_table(name,
    sa.Column('village_id', sa.Integer(), nullable=False),
    sa.Column('public', sa.LargeBinary(), nullable=False),
    sa.Column('encrypted_pem', sa.LargeBinary(), nullable=False),
    sa.Column('created', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.ForeignKeyConstraint(['village_id'], ['villages.id'], ),
    sa.PrimaryKeyConstraint(*primary_key)
    )


def _move_desk_keys(primary_key: list[str]) -> None:
    _desk_keys('desk_keys_moved', primary_key)
    op.execute('INSERT INTO desk_keys_moved (village_id, public, encrypted_pem, created) '
               'SELECT village_id, public, encrypted_pem, created FROM desk_keys')
    op.drop_table('desk_keys')
    op.rename_table('desk_keys_moved', 'desk_keys')


def upgrade() -> None:
    with op.batch_alter_table('village_state', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rules', sa.Integer(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('latest_time', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('appointed_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    with op.batch_alter_table('member_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('added_by', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
    _move_desk_keys(['village_id', 'public'])


def downgrade() -> None:
    op.execute('DELETE FROM desk_keys WHERE created < (SELECT MAX(created) FROM desk_keys AS newer '
               'WHERE newer.village_id = desk_keys.village_id)')
    _move_desk_keys(['village_id'])
    with op.batch_alter_table('member_keys', schema=None) as batch_op:
        batch_op.drop_column('added_by')
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('appointed_by')
    with op.batch_alter_table('village_state', schema=None) as batch_op:
        batch_op.drop_column('latest_time')
        batch_op.drop_column('rules')
