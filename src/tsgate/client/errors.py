"""What the client raises: one class per kind of problem the server answers.

TsgateClientError        any problem answer (``status``, ``title``, ``detail``, ``param``)
├── BadRequest           400: a parameter is missing or invalid (``param`` names it)
├── Unauthorized         401: no token, or one upstream rejects
├── Forbidden            403
├── NotFound             404: unknown site, point or job
├── TooLarge             413: a limit (``limit`` names it)
├── RateLimited          429 (``retry_after_s``)
├── ServerError          5xx: upstream or storage failed
└── JobFailed            a job ended failed, dead or cancelled (``job`` is its status)
"""

from __future__ import annotations

from typing import Any


class TsgateClientError(Exception):
    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        param: str | None = None,
        limit: str | None = None,
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.title = title
        self.detail = detail
        self.param = param
        self.limit = limit
        self.retry_after_s = retry_after_s


class BadRequest(TsgateClientError):
    pass


class Unauthorized(TsgateClientError):
    pass


class Forbidden(TsgateClientError):
    pass


class NotFound(TsgateClientError):
    pass


class TooLarge(TsgateClientError):
    pass


class RateLimited(TsgateClientError):
    pass


class ServerError(TsgateClientError):
    pass


class JobFailed(TsgateClientError):
    def __init__(self, job: dict[str, Any]) -> None:
        state = str(job.get("status"))
        super().__init__(
            409, f"job {state}", str(job.get("error") or f"job {job.get('jobId')} is {state}")
        )
        self.job = job


_BY_STATUS: dict[int, type[TsgateClientError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    413: TooLarge,
    429: RateLimited,
}


def from_problem(status: int, body: Any, retry_after: str | None) -> TsgateClientError:
    """The exception for a problem answer (``application/problem+json`` or any body)."""
    problem = body if isinstance(body, dict) else {}
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else BadRequest)
    detail = problem.get("detail") or problem.get("message") or problem.get("error") or str(body)
    retry = float(retry_after) if retry_after and retry_after.isdigit() else None
    return cls(
        status,
        str(problem.get("title") or "Error"),
        str(detail),
        param=problem.get("param"),
        limit=problem.get("limit"),
        retry_after_s=retry,
    )
