"""The one error type the trainer reports; its code is part of the output contract."""
from __future__ import annotations

from typing import Literal

ErrorCode = Literal["bad-dataset", "bad-spec", "out-of-memory", "internal", "cancelled"]


class TrainerError(Exception):
    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: ErrorCode = code
        self.message = message


def bad_spec(message: str) -> TrainerError:
    return TrainerError("bad-spec", message)


def bad_dataset(message: str) -> TrainerError:
    return TrainerError("bad-dataset", message)
