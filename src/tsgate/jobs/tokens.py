"""Keeping a caller's upstream token for a job without keeping it in clear.

With a server-side ``TSGATE_UPSTREAM_TOKEN`` the worker reads with that and no token is
stored. Otherwise the caller's token is sealed with AES-GCM under a key derived from
``TSGATE_SECRET`` (shared by servers and workers), bound to the job id so a box cannot
be moved to another job, and the box is dropped when the job ends.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tsgate.errors import Unauthorized

_NONCE_BYTES = 12


class TokenBox:
    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(
            hashlib.blake2b(secret, person=b"tsgate-jobtoken", digest_size=32).digest()
        )

    def seal(self, token: str, job_id: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, token.encode(), job_id.encode())

    def open(self, box: bytes, job_id: str) -> str:
        """The token, or ``Unauthorized`` when the box was sealed under another secret."""
        try:
            plain = self._aead.decrypt(box[:_NONCE_BYTES], box[_NONCE_BYTES:], job_id.encode())
        except (InvalidTag, ValueError) as exc:
            raise Unauthorized(
                "the job's token cannot be read here (TSGATE_SECRET differs or changed);"
                " submit the job again"
            ) from exc
        return plain.decode()


def scope_key(secret: str | None) -> bytes:
    """The salt for scope hashes; it must be equal on every server so ids agree."""
    return hashlib.blake2b((secret or "").encode(), person=b"tsgate-scope", digest_size=32).digest()
