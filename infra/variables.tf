variable "subscription_id" {
  description = "The Azure subscription to deploy into. Leave null to use the ARM_SUBSCRIPTION_ID environment variable."
  type        = string
  default     = null

  validation {
    condition     = var.subscription_id == null || can(regex("^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$", var.subscription_id))
    error_message = "subscription_id must be a subscription GUID such as 00000000-0000-0000-0000-000000000000 (az account show --query id -o tsv), or null."
  }
}

variable "location" {
  description = "The Azure region for every resource, as a short name (westeurope, eastus2, ...). It must offer the Flex Consumption plan: az functionapp list-flexconsumption-locations."
  type        = string
  default     = "westeurope"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]+$", var.location))
    error_message = "location must be a short region name in lowercase letters and digits, such as westeurope or eastus2 (az account list-locations -o table), not a display name like \"West Europe\"."
  }
}

variable "name_prefix" {
  description = "Prefix of every resource name. Storage account names are built from it, so it is 2-10 lowercase letters and digits, starting with a letter."
  type        = string
  default     = "floe"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.name_prefix))
    error_message = "name_prefix must be 2-10 lowercase letters and digits starting with a letter (storage account names allow nothing else), e.g. floe or floeprod."
  }
}

variable "storage_prefix" {
  description = "FLOE_STORAGE_PREFIX: prepended to the name of every table, queue and container Floe uses, so several Floe deployments can share one account. Lowercase letters and digits (table names allow nothing else)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{0,19}$", var.storage_prefix))
    error_message = "storage_prefix must be 1-20 lowercase letters and digits starting with a letter, e.g. prod: it begins table names, which allow letters and digits only."
  }
}

variable "tags" {
  description = "Tags added to every resource, next to application = floe."
  type        = map(string)
  default     = {}
}

variable "state_replication_type" {
  description = "Replication of the storage account holding Floe's state (jobs, runs, queues, logs): LRS, ZRS, GRS, RAGRS, GZRS or RAGZRS."
  type        = string
  default     = "LRS"

  validation {
    condition     = contains(["LRS", "ZRS", "GRS", "RAGRS", "GZRS", "RAGZRS"], var.state_replication_type)
    error_message = "state_replication_type must be one of LRS, ZRS, GRS, RAGRS, GZRS, RAGZRS."
  }
}

variable "maximum_instance_count" {
  description = "The most instances the Flex Consumption plan may scale the Function App out to."
  type        = number
  default     = 40

  validation {
    condition     = var.maximum_instance_count >= 1 && var.maximum_instance_count <= 1000 && floor(var.maximum_instance_count) == var.maximum_instance_count
    error_message = "maximum_instance_count must be a whole number from 1 to 1000 (the Flex Consumption limit)."
  }
}

variable "instance_memory_mb" {
  description = "Memory of each Function App instance, in MB: 2048 or 4096 (Flex Consumption sizes)."
  type        = number
  default     = 2048

  validation {
    condition     = contains([2048, 4096], var.instance_memory_mb)
    error_message = "instance_memory_mb must be 2048 or 4096."
  }
}

variable "log_retention_days" {
  description = "How many days the Log Analytics workspace (and so Application Insights) keeps telemetry: 30 to 730."
  type        = number
  default     = 30

  validation {
    condition     = var.log_retention_days >= 30 && var.log_retention_days <= 730
    error_message = "log_retention_days must be from 30 to 730."
  }
}

variable "alert_email" {
  description = "The email address the alert rules notify (failed runs, long runs, poison messages, late schedules)."
  type        = string

  validation {
    condition     = can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.alert_email))
    error_message = "alert_email must be an email address such as ops@example.com."
  }
}

variable "run_duration_threshold_minutes" {
  description = "A run still going, or finished, after this many minutes raises the long-runs alert."
  type        = number
  default     = 120

  validation {
    condition     = var.run_duration_threshold_minutes > 0
    error_message = "run_duration_threshold_minutes must be greater than 0."
  }
}

variable "tick_lag_threshold_seconds" {
  description = "The late-schedules alert fires when the 95th percentile of tick lag or trigger lag over 15 minutes is above this many seconds."
  type        = number
  default     = 120

  validation {
    condition     = var.tick_lag_threshold_seconds > 0
    error_message = "tick_lag_threshold_seconds must be greater than 0."
  }
}

variable "runner_image" {
  description = "Container image of the Floe runners (built from infra/runner/Dockerfile, with your task files added). Empty: no runners are deployed, and tasks wait until runners elsewhere take them."
  type        = string
  default     = ""
}

variable "runner_count" {
  description = "How many runner replicas run task attempts and their Spark clusters. A fixed number: a replica scaled in would take its running tasks with it."
  type        = number
  default     = 1

  validation {
    condition     = var.runner_count >= 1 && var.runner_count <= 30 && floor(var.runner_count) == var.runner_count
    error_message = "runner_count must be a whole number from 1 to 30."
  }
}

variable "runner_cpu" {
  description = "vCPUs of each runner replica (Container Apps consumption sizes: 0.25 to 4; memory is twice this in GiB)."
  type        = number
  default     = 4

  validation {
    condition     = contains([0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5, 4], var.runner_cpu)
    error_message = "runner_cpu must be one of 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75, 2, 2.5, 3, 3.5 or 4."
  }
}

variable "runner_slots" {
  description = "The most task processes each runner replica runs at once (FLOE_RUNNER_SLOTS); 0: no limit. Size it to runner_cpu and the tasks' memory."
  type        = number
  default     = 0

  validation {
    condition     = var.runner_slots >= 0 && var.runner_slots <= 1024 && floor(var.runner_slots) == var.runner_slots
    error_message = "runner_slots must be a whole number from 0 (no limit) to 1024."
  }
}
