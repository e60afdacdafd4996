# Databricks notebook source
print("first cell ran")

# COMMAND ----------


def divide(a, b):
    return a / b


divide(1, 0)

# COMMAND ----------

print("this cell must not run")
