"""``python -m host_app``: start, then send one refresh and one host message."""

from __future__ import annotations

from host_app import on_document_reviewed, start
from host_app.actors import sync_client_to_crm

runtime = start()
message_id = on_document_reviewed(tenant_id=1)
print(f"sent refresh_compliance {message_id} on {type(runtime.broker).__name__}")
print(f"sent sync_client_to_crm {sync_client_to_crm.send(client_id=7, tenant_id=1).message_id}")
