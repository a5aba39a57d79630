"""A Python client for tsgate (``pip install 'tsgate[client]'``): DataFrames in, files out.

    from tsgate.client import Client

    with Client("http://127.0.0.1:8080", token="<ACE token>") as ts:
        df = ts.series("demo_campus", names, "2025-10-01", "2025-10-08", interval="1h")
        frame = ts.frame("demo_campus", q="ahu1", start="2025-10-01", end="2025-10-31")
        path = ts.export("demo_campus", names, "2025-10-01", "2025-11-01", format="parquet")

``AsyncClient`` has the same methods as coroutines.
"""

from tsgate.client._async import AsyncClient
from tsgate.client._sync import Client
from tsgate.client.errors import (
    BadRequest,
    Forbidden,
    JobFailed,
    NotFound,
    RateLimited,
    ServerError,
    TooLarge,
    TsgateClientError,
    Unauthorized,
)

__all__ = [
    "AsyncClient",
    "BadRequest",
    "Client",
    "Forbidden",
    "JobFailed",
    "NotFound",
    "RateLimited",
    "ServerError",
    "TooLarge",
    "TsgateClientError",
    "Unauthorized",
]
