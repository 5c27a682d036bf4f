"""`python3 -m edgefleet_trainer.inspect_dataset`: the control plane's submit-time look at a dataset.

Reads `{"dataset": {...}}` (the job spec's dataset object) on stdin and prints one JSON line: the summary
(format, sample counts, input shape, label kind, class names/counts where cheap to know) or an error that names the
field and the file. Imports no torch, so it answers in well under a second for headers-only formats.
Exit codes: 0 summary, 2 bad dataset or bad spec, 1 internal.
"""
from __future__ import annotations

import json
import sys
import traceback

from .datasets import inspect_dataset
from .emit import emit
from .errors import TrainerError
from .spec import _Reader, parse_dataset


def main() -> int:
    try:
        try:
            raw = json.loads(sys.stdin.read(1 << 20))
        except json.JSONDecodeError as e:
            raise TrainerError("bad-spec", f"input is not valid JSON: {e}")
        r = _Reader(raw, "")
        spec = parse_dataset(r.sub("dataset", required=True))
        emit({"type": "dataset-summary", **inspect_dataset(spec)})
        return 0
    except TrainerError as e:
        emit({"type": "error", "code": e.code, "message": e.message})
        return 2
    except Exception as e:  # noqa: BLE001 - one error line, never a bare traceback
        sys.stderr.write(traceback.format_exc())
        emit({"type": "error", "code": "internal", "message": f"{type(e).__name__}: {e}".splitlines()[0][:500]})
        return 1


if __name__ == "__main__":
    sys.exit(main())
