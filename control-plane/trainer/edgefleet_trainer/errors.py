"""The one error type the trainer reports; its code is part of the output contract."""
from __future__ import annotations

from typing import Literal, Optional

ErrorCode = Literal["bad-dataset", "bad-spec", "out-of-memory", "internal", "cancelled"]


class TrainerError(Exception):
    def __init__(self, code: ErrorCode, message: str, field: Optional[str] = None) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message
        self.field = field  # the spec field at fault (e.g. "teacher.path"), when one is


def bad_spec(message: str, field: Optional[str] = None) -> TrainerError:
    return TrainerError("bad-spec", message, field)


def bad_dataset(message: str) -> TrainerError:
    return TrainerError("bad-dataset", message)
