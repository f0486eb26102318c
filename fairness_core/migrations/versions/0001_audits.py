"""Saved audits: spec, provenance, count table and results (never rows).

Revision ID: 0001
Revises:
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data_sha256", sa.String(64), nullable=False),
        sa.Column("data_name", sa.Text),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("spec_json", sa.Text, nullable=False),
        sa.Column("models_json", sa.Text, nullable=False),
        sa.Column("tool_version", sa.String(40)),
        sa.Column("provenance_json", sa.Text, nullable=False),
        sa.Column("results_json", sa.Text, nullable=False),
    )
    op.create_index("ix_audits_data_spec", "audits", ["data_sha256", "spec_hash"])
    op.create_table(
        "audit_counts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("attribute", sa.Text, nullable=False),
        sa.Column("group_name", sa.Text, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("weight", sa.Float),
        sa.Column("tn", sa.Float),
        sa.Column("fp", sa.Float),
        sa.Column("fn", sa.Float),
        sa.Column("tp", sa.Float),
        sa.Column("selected", sa.Float),
    )


def downgrade() -> None:
    op.drop_table("audit_counts")
    op.drop_index("ix_audits_data_spec", table_name="audits")
    op.drop_table("audits")
