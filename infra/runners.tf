# The runners: the machines that run task attempts and their Spark clusters (core/runtime/runner.py). The
# Function App never runs a task; it submits each attempt to the `<prefix>floe-tasks` queue, which only
# runners receive, and polls it with delayed messages (README, "Runners").
#
# Here they are replicas of one Azure Container App, deployed when `runner_image` is set (build the image
# with infra/runner/Dockerfile). Runners can also be any machine running `floe runner` with the same
# storage settings; give their identity the same roles. Runners need only the state account, never the
# Functions host's (`host` in storage.tf).
#
# Identity: like the app, a runner holds no storage key. FLOE_AZURE_CONNECTION_STRING names the state
# account without a key, so Floe signs in with DefaultAzureCredential, which is the container's
# system-assigned identity (core/store/azure/_connect.py).

locals {
  runners = var.runner_image == "" ? 0 : 1

  runner_settings = {
    FLOE_STORAGE                 = "azure"
    FLOE_AZURE_CONNECTION_STRING = "AccountName=${azurerm_storage_account.state.name}"
    FLOE_STORAGE_PREFIX          = var.storage_prefix
    FLOE_TASKS                   = "runners"
    FLOE_RUNNER_SLOTS            = tostring(var.runner_slots)
    FLOE_LOG_FORMAT              = "json"
  }
}

resource "azurerm_container_app_environment" "runners" {
  count                      = local.runners
  name                       = "cae-${var.name_prefix}-${local.suffix}"
  resource_group_name        = azurerm_resource_group.main.name
  location                   = azurerm_resource_group.main.location
  log_analytics_workspace_id = azurerm_log_analytics_workspace.main.id
  tags                       = local.tags
}

resource "azurerm_container_app" "runner" {
  count                        = local.runners
  name                         = "ca-${var.name_prefix}-runner-${local.suffix}"
  resource_group_name          = azurerm_resource_group.main.name
  container_app_environment_id = azurerm_container_app_environment.runners[0].id
  revision_mode                = "Single"
  tags                         = local.tags

  identity {
    type = "SystemAssigned"
  }

  # The connection string of Application Insights carries an ingestion key: a secret, not a plain setting.
  secret {
    name  = "appinsights"
    value = azurerm_application_insights.main.connection_string
  }

  template {
    min_replicas = var.runner_count
    max_replicas = var.runner_count

    container {
      name   = "runner"
      image  = var.runner_image
      cpu    = var.runner_cpu
      memory = "${var.runner_cpu * 2}Gi"

      dynamic "env" {
        for_each = local.runner_settings
        content {
          name  = env.key
          value = env.value
        }
      }

      env {
        name        = "APPLICATIONINSIGHTS_CONNECTION_STRING"
        secret_name = "appinsights"
      }
    }
  }
}

resource "azurerm_role_assignment" "runner_state" {
  for_each             = local.runners == 1 ? toset(local.state_roles) : toset([])
  scope                = azurerm_storage_account.state.id
  role_definition_name = each.key
  principal_id         = azurerm_container_app.runner[0].identity[0].principal_id
  principal_type       = "ServicePrincipal"
}
