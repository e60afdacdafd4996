# Alert rules: log queries over what Floe emits (names in core/telemetry/names.py; tests/infra checks every
# name these queries read). They read metrics, not spans, so sampling never hides a failure. They are
# scoped to Application Insights, so they use its classic table names (customMetrics). Each rule runs
# every 5 minutes over the last 15; the overlap absorbs ingestion delay. Auto-mitigation makes an alert
# fire once and resolve by itself, instead of notifying on every evaluation that still sees the same rows.

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "failed_runs" {
  name                 = "alert-${var.name_prefix}-failed-runs"
  display_name         = "Floe: runs failed"
  description          = "Runs finished FAILED or TIMEDOUT in the last 15 minutes, by job."
  resource_group_name  = azurerm_resource_group.main.name
  location             = azurerm_resource_group.main.location
  scopes               = [azurerm_application_insights.main.id]
  severity             = 2
  evaluation_frequency = "PT5M"
  window_duration      = "PT15M"

  criteria {
    query                   = <<-KQL
      customMetrics
      | where name == "floe.runs.finished"
      | extend ResultState = tostring(customDimensions["floe.run.result_state"])
      | where ResultState in ("FAILED", "TIMEDOUT")
      | summarize FailedRuns = sum(valueSum) by JobId = tostring(customDimensions["floe.job.id"])
    KQL
    time_aggregation_method = "Total"
    metric_measure_column   = "FailedRuns"
    operator                = "GreaterThan"
    threshold               = 0

    dimension {
      name     = "JobId"
      operator = "Include"
      values   = ["*"]
    }

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }

  auto_mitigation_enabled = true

  action {
    action_groups = [azurerm_monitor_action_group.main.id]
  }

  tags = local.tags
}

# A run counts while it is still going (floe.run.age, recorded by tick) and once it has ended
# (floe.run.duration), so a stuck run alerts before it ends.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "long_runs" {
  name                 = "alert-${var.name_prefix}-long-runs"
  display_name         = "Floe: runs over their duration threshold"
  description          = "A run has been going, or took, longer than ${var.run_duration_threshold_minutes} minutes, by job."
  resource_group_name  = azurerm_resource_group.main.name
  location             = azurerm_resource_group.main.location
  scopes               = [azurerm_application_insights.main.id]
  severity             = 3
  evaluation_frequency = "PT5M"
  window_duration      = "PT15M"

  criteria {
    query                   = <<-KQL
      customMetrics
      | where name in ("floe.run.duration", "floe.run.age")
      | summarize LongestRunMs = max(valueMax) by JobId = tostring(customDimensions["floe.job.id"])
    KQL
    time_aggregation_method = "Maximum"
    metric_measure_column   = "LongestRunMs"
    operator                = "GreaterThan"
    threshold               = var.run_duration_threshold_minutes * 60000

    dimension {
      name     = "JobId"
      operator = "Include"
      values   = ["*"]
    }

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }

  auto_mitigation_enabled = true

  action {
    action_groups = [azurerm_monitor_action_group.main.id]
  }

  tags = local.tags
}

resource "azurerm_monitor_scheduled_query_rules_alert_v2" "poison_messages" {
  name                 = "alert-${var.name_prefix}-poison-messages"
  display_name         = "Floe: poison messages"
  description          = "Queue messages were moved to a poison queue in the last 15 minutes, by queue. Read them from <queue>-poison."
  resource_group_name  = azurerm_resource_group.main.name
  location             = azurerm_resource_group.main.location
  scopes               = [azurerm_application_insights.main.id]
  severity             = 2
  evaluation_frequency = "PT5M"
  window_duration      = "PT15M"

  criteria {
    query                   = <<-KQL
      customMetrics
      | where name == "floe.messages.poisoned"
      | summarize PoisonMessages = sum(valueSum) by Queue = tostring(customDimensions["floe.queue.name"])
    KQL
    time_aggregation_method = "Total"
    metric_measure_column   = "PoisonMessages"
    operator                = "GreaterThan"
    threshold               = 0

    dimension {
      name     = "Queue"
      operator = "Include"
      values   = ["*"]
    }

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }

  auto_mitigation_enabled = true

  action {
    action_groups = [azurerm_monitor_action_group.main.id]
  }

  tags = local.tags
}

# Application Insights keeps a histogram's sum, count, min and max per export interval, not its buckets.
# So the 95th percentile is taken over the per-interval maxima. With one tick a minute, each interval
# holds about one tick, and this is close to the true p95; with more values per interval it leans high.
resource "azurerm_monitor_scheduled_query_rules_alert_v2" "tick_lag" {
  name                 = "alert-${var.name_prefix}-tick-lag"
  display_name         = "Floe: schedules running late"
  description          = "The 95th percentile of tick lag or trigger lag over 15 minutes is above ${var.tick_lag_threshold_seconds} seconds."
  resource_group_name  = azurerm_resource_group.main.name
  location             = azurerm_resource_group.main.location
  scopes               = [azurerm_application_insights.main.id]
  severity             = 2
  evaluation_frequency = "PT5M"
  window_duration      = "PT15M"

  criteria {
    query                   = <<-KQL
      customMetrics
      | where name in ("floe.tick.lag", "floe.trigger.lag")
      | summarize P95LagMs = percentile(valueMax, 95) by Lag = name
    KQL
    time_aggregation_method = "Maximum"
    metric_measure_column   = "P95LagMs"
    operator                = "GreaterThan"
    threshold               = var.tick_lag_threshold_seconds * 1000

    dimension {
      name     = "Lag"
      operator = "Include"
      values   = ["*"]
    }

    failing_periods {
      minimum_failing_periods_to_trigger_alert = 1
      number_of_evaluation_periods             = 1
    }
  }

  auto_mitigation_enabled = true

  action {
    action_groups = [azurerm_monitor_action_group.main.id]
  }

  tags = local.tags
}
