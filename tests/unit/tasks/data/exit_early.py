# Databricks notebook source
# MAGIC %md
# MAGIC # Widgets, task values and exit
# MAGIC A source notebook as Databricks exports it.

# COMMAND ----------


dbutils.widgets.text("greeting", "hello")
name = dbutils.widgets.get("name")
print(f"{dbutils.widgets.get('greeting')}, {name}")

# COMMAND ----------

# DBTITLE 1,Share a value
upstream = dbutils.jobs.taskValues.get("ingest", "rows")
dbutils.jobs.taskValues.set("total", upstream * 2)
try:
    dbutils.notebook.exit(f"rows={upstream * 2}")
except Exception:
    print("NotebookExit must not be an Exception")

# COMMAND ----------

print("this cell must not run")
open("must-not-exist.txt", "w").close()
