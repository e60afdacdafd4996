"""Example task: loads one region (a for-each iteration's input) of the day's rows."""

import sys

region, rows = sys.argv[1], int(sys.argv[2])
print(f"loaded {rows // 3} rows for region {region}")
