# Databricks notebook source
# ruff: noqa: F821 (dbutils and spark are given to notebooks by the runtime)
count = spark.range(3).count()
dbutils.jobs.taskValues.set("count", count)
print("count", count)

# COMMAND ----------

# MAGIC %sql
# MAGIC CREATE OR REPLACE TEMPORARY VIEW tens AS SELECT id * 10 AS tens FROM range(2);
# MAGIC SELECT * FROM tens
