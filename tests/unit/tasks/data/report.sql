-- Databricks notebook source
-- MAGIC %md
-- MAGIC # A SQL notebook

-- COMMAND ----------

CREATE TEMPORARY VIEW numbers AS SELECT id FROM range(5);

-- COMMAND ----------

-- DBTITLE 1,Count
SELECT count(*) AS n FROM numbers

-- COMMAND ----------

-- MAGIC %python
-- MAGIC print(spark.table("numbers").count())
