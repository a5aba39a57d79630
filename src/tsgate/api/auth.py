"""Caller tokens: ``Authorization: Bearer <t>`` or ``X-ACE-Token: <t>``, never logged."""

from __future__ import annotations

from starlette.requests import Request

from tsgate.errors import Unauthorized


def token_of(request: Request, fallback: str | None) -> str:
    """The caller's ACE token, or the server-side ``fallback`` (demo / single tenant)."""
    header = request.headers.get("authorization")
    token: str | None = None
    if header:
        token = header.strip()
        # tolerate clients that already prefix "Bearer " (never forward "Bearer Bearer")
        while token.lower().startswith("bearer "):
            token = token[7:].strip()
    if not token:
        token = (request.headers.get("x-ace-token") or "").strip() or None
    if not token:
        token = fallback
    if not token:
        raise Unauthorized(
            "no token: send 'Authorization: Bearer <token>' or 'X-ACE-Token: <token>'"
        )
    return token
