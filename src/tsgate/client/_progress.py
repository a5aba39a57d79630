"""A job's progress as a ``rich`` bar, shown when asked or when stderr is a terminal."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn


class JobProgress:
    def __init__(self, job_id: str, show: bool | None, console: Console | None) -> None:
        visible = sys.stderr.isatty() if show is None else show
        self._progress: Progress | None = None
        if visible:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[samples]}"),
                TimeElapsedColumn(),
                console=console or Console(stderr=True),
            )
            self._task = self._progress.add_task(f"job {job_id[:8]}", total=100, samples="")

    def __enter__(self) -> JobProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, job: dict[str, Any]) -> None:
        if self._progress is None:
            return
        done = job.get("samplesDone") or 0
        total = job.get("samplesTotal") or 0
        about = "" if job.get("status") == "completed" else "about "
        samples = f"{done:,} of {about}{total:,} samples" if total else f"{done:,} samples"
        if job.get("partsTotal"):
            samples += f" · {job.get('partsDone')} of {job['partsTotal']} parts"
        self._progress.update(
            self._task,
            completed=float(job.get("progress") or 0),
            samples=f"{samples} · {job.get('status')}",
        )
