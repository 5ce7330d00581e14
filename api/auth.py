"""The admin token on run-time changes: unset means admin routes refuse."""

from __future__ import annotations

import secrets

from fastapi import Request

from api.errors import ApiError
from api.state import api_state


def require_admin(request: Request) -> None:
    token = api_state(request).settings.api_token
    if token is None:
        raise ApiError(403, "admin_disabled",
                       "admin routes are disabled: set VWE_API_TOKEN to enable them")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise ApiError(401, "unauthorized", "send the admin token as 'Authorization: Bearer ...'")
    if not secrets.compare_digest(given.encode(), token.get_secret_value().encode()):
        raise ApiError(403, "forbidden", "the admin token is wrong")
