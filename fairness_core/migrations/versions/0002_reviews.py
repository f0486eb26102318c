"""Reviews: versions of an audit, decisions on findings, comments, sign-off.

Revision ID: 0002
Revises: 0001
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("audits") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
        batch.add_column(sa.Column("previous_id", sa.Integer, nullable=True))
        batch.create_foreign_key("fk_audits_previous", "audits", ["previous_id"], ["id"])
        batch.create_unique_constraint("uq_audit_version",
                                       ["data_sha256", "spec_hash", "version"])
    op.create_table(
        "finding_reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("finding_key", sa.Text, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("justification", sa.Text),
        sa.Column("owner", sa.Text),
        sa.Column("due_date", sa.Date),
        sa.Column("reason", sa.Text),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("reviewer_verified", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_version", sa.Integer, nullable=False),
        sa.UniqueConstraint("audit_id", "finding_key", name="uq_review_finding"),
    )
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("finding_key", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(30)),
        sa.Column("text", sa.Text),
        sa.Column("owner", sa.Text),
        sa.Column("due_date", sa.Date),
        sa.Column("reviewer", sa.Text, nullable=False),
        sa.Column("reviewer_verified", sa.Boolean, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "signoffs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("statement", sa.Text, nullable=False),
        sa.Column("verified", sa.Boolean, nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("signoffs")
    op.drop_table("review_events")
    op.drop_table("finding_reviews")
    with op.batch_alter_table("audits") as batch:
        batch.drop_constraint("uq_audit_version", type_="unique")
        batch.drop_constraint("fk_audits_previous", type_="foreignkey")
        batch.drop_column("previous_id")
        batch.drop_column("version")
