# The Function App on the Flex Consumption plan (Linux, Python 3.11), with a system-assigned identity.
#
# Identity: nothing in the app holds a storage key. The system-assigned identity reaches three accounts
# (storage.tf), with the roles below:
# - `host`, the Functions host's own storage: `function_app_storage_uses_managed_identity` makes the
#   provider write AzureWebJobsStorage__accountName (timer locks, host keys, schedule monitor).
# - `state`, twice over. The queue triggers name the connection `FloeStorage` (functions/queues.py), an
#   identity-based connection the host finds in FloeStorage__queueServiceUri. Floe reads
#   FLOE_AZURE_CONNECTION_STRING, a connection string without a key, and core/store/azure signs in with
#   DefaultAzureCredential, which is the app's system-assigned identity here. Both name the state account:
#   functions/root.py refuses to start otherwise, as Floe's messages would go where no trigger listens.
# - `deployment`: the package is read with the identity too (SystemAssignedIdentity).

resource "azurerm_service_plan" "main" {
  name                = "asp-${var.name_prefix}-${local.suffix}"
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  os_type             = "Linux"
  sku_name            = "FC1"
  tags                = local.tags
}

# Accepted as an admin bearer token by Floe's API (core/handlers.py, Floe.authenticate). The Functions app
# never creates a token itself, so this is how the first one exists. It is in the Terraform state: keep the
# state private.
resource "random_password" "admin_token" {
  length  = 48
  special = false
}

locals {
  admin_token = "floe_${random_password.admin_token.result}"

  # Floe's settings (core/settings.py, functions/root.py; an unknown FLOE_* name stops Floe at start).
  # Left out on purpose:
  # - FUNCTIONS_WORKER_RUNTIME, WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT* and WEBSITE_TIME_ZONE: Flex
  #   Consumption does not support them.
  # - AzureWebJobsStorage in any form: the provider writes AzureWebJobsStorage__accountName (see the top of
  #   this file), and a plain connection string would carry a key.
  # - FLOE_HOME: functions/root.py defaults it to the temporary folder, because the app's own folder is
  #   read-only.
  app_settings = {
    FLOE_STORAGE = "azure"
    # The state account, without a key: Floe signs in as the app.
    FLOE_AZURE_CONNECTION_STRING = "AccountName=${azurerm_storage_account.state.name}"
    # The queue triggers' connection (functions/queues.py CONNECTION), on the same account.
    FloeStorage__queueServiceUri = trimsuffix(azurerm_storage_account.state.primary_queue_endpoint, "/")
    # The queue bindings name `%FLOE_STORAGE_PREFIX%floe-work`, so the setting must exist. It also prefixes
    # every table, queue and container declared in storage.tf.
    FLOE_STORAGE_PREFIX = var.storage_prefix
    FLOE_ADMIN_TOKEN    = local.admin_token
    # The app runs no task: attempts go to `<prefix>floe-tasks` for the runners (runners.tf).
    FLOE_TASKS = "runners"

    # With "telemetryMode": "OpenTelemetry" in host.json, the Python worker configures the Azure Monitor
    # exporter itself (azure-monitor-opentelemetry must be in the app's requirements). Floe must not
    # configure it a second time.
    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY = "true"
    # Floe's own spans and metrics are what the alerts and the workbook read; without this the worker's
    # instrumentations would add a dependency span per storage call.
    OTEL_PYTHON_DISABLED_INSTRUMENTATIONS = "azure_sdk,requests,urllib3,urllib"
  }

  # Data roles of the app's identity on the host's storage: what Functions documents for an identity-based
  # AzureWebJobsStorage. Blob Data Owner, not Contributor, for the host's blob leases (timer locks) and keys.
  host_roles = [
    "Storage Blob Data Owner",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
  ]

  # Data roles on the state account, of the app's identity (Floe and its queue triggers) and of the runners'
  # (runners.tf): Contributor on each service, the least that lets Floe create the tables and queues it
  # finds missing and use its container, and the queue triggers receive, delete and poison messages.
  state_roles = [
    "Storage Blob Data Contributor",
    "Storage Queue Data Contributor",
    "Storage Table Data Contributor",
  ]
}

resource "azurerm_function_app_flex_consumption" "main" {
  name                = local.function_app_name
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  service_plan_id     = azurerm_service_plan.main.id

  runtime_name           = "python"
  runtime_version        = "3.11"
  maximum_instance_count = var.maximum_instance_count
  instance_memory_in_mb  = var.instance_memory_mb

  storage_container_type      = "blobContainer"
  storage_container_endpoint  = "${azurerm_storage_account.deployment.primary_blob_endpoint}${azurerm_storage_container.deployment.name}"
  storage_authentication_type = "SystemAssignedIdentity"

  function_app_storage_account_name          = azurerm_storage_account.host.name
  function_app_storage_uses_managed_identity = true

  identity {
    type = "SystemAssigned"
  }

  site_config {
    application_insights_connection_string = azurerm_application_insights.main.connection_string
  }

  app_settings = local.app_settings
  tags         = local.tags
}

resource "azurerm_role_assignment" "host" {
  for_each             = toset(local.host_roles)
  scope                = azurerm_storage_account.host.id
  role_definition_name = each.key
  principal_id         = azurerm_function_app_flex_consumption.main.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "state" {
  for_each             = toset(local.state_roles)
  scope                = azurerm_storage_account.state.id
  role_definition_name = each.key
  principal_id         = azurerm_function_app_flex_consumption.main.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}

resource "azurerm_role_assignment" "deployment" {
  scope                = azurerm_storage_account.deployment.id
  role_definition_name = "Storage Blob Data Owner"
  principal_id         = azurerm_function_app_flex_consumption.main.identity[0].principal_id
  principal_type       = "ServicePrincipal"
}
