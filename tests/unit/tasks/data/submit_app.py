"""A spark_submit_task application: counts a range with the session spark-submit configured."""

import sys

from pyspark.sql import SparkSession

session = SparkSession.builder.getOrCreate()
print("master", session.sparkContext.master)
print("count", session.range(int(sys.argv[1])).count())
print("args", sys.argv[2:])
