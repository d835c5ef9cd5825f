"""Bearer-token authentication of the admin API.

Every data and action endpoint depends on :func:`require_token`: no ``Authorization`` header
→ 401 (with ``WWW-Authenticate: Bearer``), a wrong token → 403, and when
``GCMC_JOBS_ADMIN_TOKEN`` is not set at all → 503 with a message saying so (the API refuses
rather than run open). Tokens are compared in constant time and never logged.
"""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

__all__ = ["bearer", "require_token"]

#: The security scheme, so the OpenAPI document declares it.
bearer = HTTPBearer(auto_error=False, description="GCMC_JOBS_ADMIN_TOKEN")


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """Let the request through only with ``Authorization: Bearer <settings.admin_token>``."""
    settings = request.app.state.settings
    if settings.admin_token is None:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "the admin API is disabled: set GCMC_JOBS_ADMIN_TOKEN to enable it",
        )
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    expected = settings.admin_token.get_secret_value().encode()
    if not hmac.compare_digest(credentials.credentials.encode(), expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "wrong bearer token")
