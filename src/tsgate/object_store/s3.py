"""Objects in an S3-compatible bucket (AWS, R2, MinIO, SeaweedFS) through obstore.

URL: ``s3://bucket/prefix?endpoint=http://127.0.0.1:8333&region=us-east-1``, with
``access_key_id`` / ``secret_access_key`` / ``session_token`` in the query or the usual
``AWS_*`` environment variables. A custom endpoint switches to path-style requests;
an ``http://`` endpoint allows plain HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from typing import IO, TYPE_CHECKING, Self
from urllib.parse import parse_qs, urlsplit

import obstore
from obstore.exceptions import (
    AlreadyExistsError,
    BaseError,
    NotFoundError,
    PreconditionError,
)
from obstore.store import S3Store

from tsgate.errors import ConfigError, StorageError
from tsgate.object_store.base import (
    ObjectInfo,
    check_range,
    file_size,
    prefix_parent,
    validate_key,
    validate_prefix,
)

if TYPE_CHECKING:
    from obstore.store import ClientConfig, S3Config

_QUERY_KEYS = frozenset(
    {"endpoint", "region", "access_key_id", "secret_access_key", "session_token"}
)
# obstore raises NotFoundError for some calls and plain FileNotFoundError for others.
_MISSING = (NotFoundError, FileNotFoundError)
_PUT_CONCURRENCY = 32  # requests of one put_many in flight at once


class S3ObjectStore:
    """Objects under ``prefix`` in one bucket; keys map to ``prefix/key``."""

    def __init__(self, store: S3Store, *, description: str) -> None:
        self._store = store
        # Bucket and prefix only: error messages must never carry the secret.
        self._description = description

    @classmethod
    def from_url(cls, url: str) -> Self:
        parts = urlsplit(url)
        bucket = parts.hostname
        if not bucket:
            raise ConfigError("objects: s3:// URL names no bucket (s3://bucket/prefix)")
        query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
        unknown = sorted(set(query) - _QUERY_KEYS)
        if unknown:
            raise ConfigError(
                f"objects: unknown s3:// URL parameters {unknown}; known: {sorted(_QUERY_KEYS)}"
            )
        prefix = parts.path.strip("/")
        # Only what the URL sets: obstore reads the AWS_* environment for the rest.
        config: S3Config = {}
        if "region" in query:
            config["region"] = query["region"]
        if "access_key_id" in query:
            config["access_key_id"] = query["access_key_id"]
        if "secret_access_key" in query:
            config["secret_access_key"] = query["secret_access_key"]
        if "session_token" in query:
            config["session_token"] = query["session_token"]
        client_options: ClientConfig = {}
        endpoint = query.get("endpoint")
        if endpoint:
            config["endpoint"] = endpoint
            # Custom servers rarely have wildcard DNS for bucket.host names.
            config["virtual_hosted_style_request"] = False
            if endpoint.startswith("http://"):
                client_options["allow_http"] = True
        try:
            store = S3Store(
                bucket, prefix=prefix or None, config=config, client_options=client_options
            )
        except BaseError as exc:
            raise ConfigError(f"objects: invalid s3:// settings for bucket {bucket!r}") from exc
        return cls(store, description=f"s3://{bucket}/{prefix}")

    async def get(self, key: str) -> bytes | None:
        validate_key(key)
        try:
            result = await obstore.get_async(self._store, key)
            return bytes(await result.bytes_async())
        except _MISSING:
            return None
        except BaseError as exc:
            raise self._error("get", key, exc) from exc

    async def get_range(self, key: str, start: int, end: int) -> bytes | None:
        validate_key(key)
        check_range(start, end)
        range_error: BaseError | None = None
        if start < end:
            try:
                return bytes(await obstore.get_range_async(self._store, key, start=start, end=end))
            except _MISSING:
                return None
            except BaseError as exc:
                # Servers answer 416 to a range past the end; find out whether that was it.
                range_error = exc
        size = await self._size_or_none(key)
        if size is None:
            return None
        if range_error is None or start >= size:
            return b""
        raise self._error("get_range", key, range_error) from range_error

    async def put(self, key: str, data: bytes, *, if_absent: bool = False) -> bool:
        validate_key(key)
        try:
            await obstore.put_async(self._store, key, data, mode="create" if if_absent else None)
        except (AlreadyExistsError, PreconditionError):
            if if_absent:
                return False
            raise self._error("put", key) from None
        except BaseError as exc:
            raise self._error("put", key, exc) from exc
        return True

    async def put_many(self, items: Sequence[tuple[str, bytes]], *, durable: bool = True) -> None:
        # an S3 PUT is durable once it answers; the batch's requests run concurrently
        gate = asyncio.Semaphore(_PUT_CONCURRENCY)

        async def one(key: str, data: bytes) -> None:
            async with gate:
                await self.put(key, data)

        await asyncio.gather(*(one(k, d) for k, d in items))

    async def put_file(self, key: str, file: IO[bytes]) -> int:
        validate_key(key)
        size = file_size(file)
        try:
            # obstore reads the file in parts and uploads large ones as a multipart upload
            await obstore.put_async(self._store, key, file)
        except BaseError as exc:
            raise self._error("put", key, exc) from exc
        return size

    async def delete(self, key: str) -> None:
        validate_key(key)
        try:
            await obstore.delete_async(self._store, key)
        except _MISSING:
            return
        except BaseError as exc:
            raise self._error("delete", key, exc) from exc

    async def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        validate_prefix(prefix)
        # obstore matches whole path segments, so list the enclosing "directory" and
        # filter by the string prefix ourselves.
        stream = obstore.list(self._store, prefix_parent(prefix) or None, chunk_size=1000)
        try:
            # S3 lists keys in byte order, which is str order for our ASCII keys.
            async for batch in stream:
                for meta in batch:
                    if meta["path"].startswith(prefix):
                        yield ObjectInfo(meta["path"], meta["size"])
        except BaseError as exc:
            raise self._error("list", prefix, exc) from exc

    async def aclose(self) -> None:
        # obstore's connection pool lives in Rust and is released with the store object;
        # there is nothing to close explicitly.
        return None

    async def _size_or_none(self, key: str) -> int | None:
        try:
            meta = await obstore.head_async(self._store, key)
        except _MISSING:
            return None
        except BaseError as exc:
            raise self._error("head", key, exc) from exc
        return meta["size"]

    def _error(self, operation: str, key: str, exc: BaseException | None = None) -> StorageError:
        reason = f": {type(exc).__name__}" if exc is not None else ""
        return StorageError(f"{self._description}: {operation} {key!r} failed{reason}")
