#!/usr/bin/env python3
"""EdgeFleet trainer entry: `python3 control-plane/trainer/train.py --spec job.json` (or spec on stdin)."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from edgefleet_trainer.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
