"""Example task for the fan-out job: prints which step it is."""

import sys

print(f"step {sys.argv[1]} done")
