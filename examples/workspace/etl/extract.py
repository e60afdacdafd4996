"""Example task: reads its parameters from argv, as a Databricks spark_python_task does."""

import argparse

parser = argparse.ArgumentParser()
parser.add_argument("--greeting", default="hi")
parser.add_argument("--run-id", required=True)
args = parser.parse_args()
print(f"{args.greeting} from run {args.run_id}: extracted 3 rows")
