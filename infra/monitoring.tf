# Log Analytics, Application Insights on top of it, and the action group alerts notify.
# Floe's spans and metrics arrive in Application Insights; core/telemetry/names.py says which table and
# which customDimensions key each one lands in.

resource "azurerm_log_analytics_workspace" "main" {
  name                = "log-${var.name_prefix}-${local.suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  sku                 = "PerGB2018"
  retention_in_days   = var.log_retention_days
  tags                = local.tags
}

resource "azurerm_application_insights" "main" {
  name                = "appi-${var.name_prefix}-${local.suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  workspace_id        = azurerm_log_analytics_workspace.main.id
  application_type    = "web"
  tags                = local.tags
}

resource "azurerm_monitor_action_group" "main" {
  name                = "ag-${var.name_prefix}-${local.suffix}"
  resource_group_name = azurerm_resource_group.main.name
  short_name          = "floe"

  email_receiver {
    name                    = "floe-operators"
    email_address           = var.alert_email
    use_common_alert_schema = true
  }

  tags = local.tags
}
