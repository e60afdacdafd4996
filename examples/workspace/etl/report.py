"""Example task: the task name and the run's start date arrive resolved from dynamic value references."""

import sys

task_name, start_date = sys.argv[1:3]
print(f"{task_name}: report for {start_date} is ready")
