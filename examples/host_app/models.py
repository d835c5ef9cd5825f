"""The host's own table (the host creates and migrates it; gcmc-jobs never touches it)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, func

metadata = MetaData()

#: One row per client synchronised to the (imaginary) CRM.
crm_syncs = Table(
    "host_crm_syncs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("client_id", BigInteger, nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
