"""Caller tokens: ``Authorization: Bearer <t>`` or ``X-ACE-Token: <t>``, never logged."""

from __future__ import annotations

from starlette.requests import Request

from tsgate.errors import Unauthorized


def _unprefixed(value: str) -> str:
    # tolerate clients that prefix "Bearer " once too often (never forward "Bearer Bearer")
    token = value.strip()
    while token.lower().startswith("bearer "):
        token = token[7:].strip()
    return token


def token_of(request: Request, fallback: str | None) -> str:
    """The caller's ACE token, or the server-side ``fallback`` (demo / single tenant).

    ``Authorization`` must be a Bearer credential (Basic and other schemes are refused,
    never forwarded as a token); ``X-ACE-Token`` may carry the token bare or as "Bearer …".
    """
    headers = request.headers
    return token_from(headers.get("authorization"), headers.get("x-ace-token"), fallback)


def token_from(header: str | None, ace_token: str | None, fallback: str | None) -> str:
    """:func:`token_of` from the two header values (the first of each, ``None`` if absent)."""
    token: str | None = None
    if header and header.strip():
        scheme = header.strip().split(None, 1)[0]
        if scheme.lower() != "bearer":
            raise Unauthorized(
                f"Authorization: the {scheme[:20]!r} scheme is not accepted;"
                " send 'Authorization: Bearer <token>' or 'X-ACE-Token: <token>'"
            )
        token = _unprefixed(header) or None
    if not token:
        token = _unprefixed(ace_token or "") or None
    if not token:
        token = fallback
    if not token:
        raise Unauthorized(
            "no token: send 'Authorization: Bearer <token>' or 'X-ACE-Token: <token>'"
        )
    return token
