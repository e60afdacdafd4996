# Databricks notebook source

count = spark.range(3).count()
dbutils.jobs.taskValues.set("count", count)
print("count", count)

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE OR REPLACE TEMPORARY VIEW tens AS SELECT id * 10 AS tens FROM range(2);
# MAGIC SELECT * FROM tens
