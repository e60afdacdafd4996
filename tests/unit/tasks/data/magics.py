# Databricks notebook source
# MAGIC %md-sandbox
# MAGIC <b>Title</b>

# COMMAND ----------

# MAGIC %sql
# MAGIC SELECT 1 AS one;
# MAGIC SELECT ';' AS semi -- a comment; with a semicolon

# COMMAND ----------

# MAGIC %pip install --quiet requests==2.0

# COMMAND ----------

# MAGIC %sh
# MAGIC echo "from sh"
# MAGIC ls

# COMMAND ----------

# MAGIC %python
# MAGIC print(1)

# COMMAND ----------

# MAGIC %scala
# MAGIC val x = 1

# COMMAND ----------

# MAGIC %run ./other_notebook

# COMMAND ----------

# MAGIC
# MAGIC # not a magic: comment lines only

# COMMAND ----------


