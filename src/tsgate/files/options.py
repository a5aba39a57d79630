"""User files' options (POST /api/files): the size of one, and what one token may keep."""

from __future__ import annotations

from dataclasses import dataclass

from tsgate.options import AtLeastOne, Count, PositiveSeconds


@dataclass(frozen=True)
class FileSettings:
    max_file_bytes: AtLeastOne = 20 << 20
    max_files_per_caller: Count = 1000  # 0: no limit
    max_file_bytes_per_caller: Count = 1 << 30  # 0: no limit
    upload_timeout_s: PositiveSeconds = 120.0  # an upload's body must arrive within this
