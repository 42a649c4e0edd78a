"""Initial schema: every table of docs/bot-internals.md (no message text column, ever).

Revision ID: 0001_initial
Revises: 
Create Date: 2026-11-22 09:07:13.185558
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001_initial'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('channel_settings',
    sa.Column('guild_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('channel_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('tagging_mode', sa.String(length=16), server_default='off', nullable=False),
    sa.Column('ignored', sa.Boolean(), server_default=sa.text('0'), nullable=False),
    sa.CheckConstraint("tagging_mode IN ('off', 'shadow', 'react', 'forum')", name=op.f('ck_channel_settings_tagging_mode')),
    sa.PrimaryKeyConstraint('guild_id', 'channel_id', name=op.f('pk_channel_settings'))
    )
    op.create_table('feedback',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('moderator_id', sa.BigInteger(), nullable=False),
    sa.Column('predicted_label', sa.String(length=64), nullable=True),
    sa.Column('correct_label', sa.String(length=64), nullable=True),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("source IN ('context_menu', 'alert')", name=op.f('ck_feedback_source')),
    sa.CheckConstraint("verdict IN ('correct', 'wrong', 'corrected')", name=op.f('ck_feedback_verdict')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_feedback')),
    sa.UniqueConstraint('message_id', 'moderator_id', 'source', name=op.f('uq_feedback_message_id_moderator_id_source'))
    )
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.create_index('ix_feedback_guild_id_created_at', ['guild_id', 'created_at'], unique=False)

    op.create_table('guild_settings',
    sa.Column('guild_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('summary_channel_id', sa.BigInteger(), nullable=True),
    sa.Column('summary_weekday', sa.Integer(), server_default='0', nullable=False),
    sa.Column('summary_hour', sa.Integer(), server_default='9', nullable=False),
    sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('alert_channel_id', sa.BigInteger(), nullable=True),
    sa.Column('alert_labels', sa.JSON(), server_default='["spam", "toxic"]', nullable=False),
    sa.Column('thresholds', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('emoji_map', sa.JSON(), server_default='{}', nullable=False),
    sa.Column('retention_days', sa.Integer(), server_default='90', nullable=False),
    sa.Column('unanswered_after_hours', sa.Integer(), server_default='24', nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('retention_days >= 1', name=op.f('ck_guild_settings_retention_days')),
    sa.CheckConstraint('summary_hour BETWEEN 0 AND 23', name=op.f('ck_guild_settings_summary_hour')),
    sa.CheckConstraint('summary_weekday BETWEEN 0 AND 6', name=op.f('ck_guild_settings_summary_weekday')),
    sa.PrimaryKeyConstraint('guild_id', name=op.f('pk_guild_settings'))
    )
    op.create_table('messages',
    sa.Column('message_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('parent_id', sa.BigInteger(), nullable=True),
    sa.Column('author_id', sa.BigInteger(), nullable=False),
    sa.Column('reply_to_id', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('edited_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('label', sa.String(length=64), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('scores', sa.JSON(), nullable=True),
    sa.Column('uncertain', sa.Boolean(), server_default=sa.text('0'), nullable=False),
    sa.Column('model_version', sa.String(length=128), nullable=True),
    sa.Column('attachment_only', sa.Boolean(), server_default=sa.text('0'), nullable=False),
    sa.Column('classified_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_messages'))
    )
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.create_index('ix_messages_author_id', ['author_id'], unique=False)
        batch_op.create_index('ix_messages_channel_id_message_id', ['channel_id', 'message_id'], unique=False)
        batch_op.create_index('ix_messages_guild_id_created_at', ['guild_id', 'created_at'], unique=False)

    op.create_table('privacy_optouts',
    sa.Column('user_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('user_id', name=op.f('pk_privacy_optouts'))
    )
    op.create_table('summaries_posted',
    sa.Column('guild_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('week_start', sa.Date(), nullable=False),
    sa.Column('posted_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=True),
    sa.Column('message_id', sa.BigInteger(), nullable=True),
    sa.PrimaryKeyConstraint('guild_id', 'week_start', name=op.f('pk_summaries_posted'))
    )
    op.create_table('tag_actions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('guild_id', sa.BigInteger(), nullable=False),
    sa.Column('channel_id', sa.BigInteger(), nullable=False),
    sa.Column('message_id', sa.BigInteger(), nullable=False),
    sa.Column('mode', sa.String(length=16), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('label', sa.String(length=64), nullable=False),
    sa.Column('applied', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("action IN ('react', 'forum_tag', 'alert')", name=op.f('ck_tag_actions_action')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tag_actions'))
    )
    with op.batch_alter_table('tag_actions', schema=None) as batch_op:
        batch_op.create_index('ix_tag_actions_guild_id_created_at', ['guild_id', 'created_at'], unique=False)
        batch_op.create_index('ix_tag_actions_message_id', ['message_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('tag_actions', schema=None) as batch_op:
        batch_op.drop_index('ix_tag_actions_message_id')
        batch_op.drop_index('ix_tag_actions_guild_id_created_at')

    op.drop_table('tag_actions')
    op.drop_table('summaries_posted')
    op.drop_table('privacy_optouts')
    with op.batch_alter_table('messages', schema=None) as batch_op:
        batch_op.drop_index('ix_messages_guild_id_created_at')
        batch_op.drop_index('ix_messages_channel_id_message_id')
        batch_op.drop_index('ix_messages_author_id')

    op.drop_table('messages')
    op.drop_table('guild_settings')
    with op.batch_alter_table('feedback', schema=None) as batch_op:
        batch_op.drop_index('ix_feedback_guild_id_created_at')

    op.drop_table('feedback')
    op.drop_table('channel_settings')
