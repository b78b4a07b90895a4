"""`python -m charter.demo`: run the scripted multi-agent workflow in-process or against a sidecar."""

from __future__ import annotations

import sys

from charter.demo import main

if __name__ == "__main__":
    sys.exit(main())
