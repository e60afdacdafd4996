# Three storage accounts, none of which the app reaches with a key:
# - `state` holds Floe's state: its tables, queues and blob container. The queue triggers
#   (functions/queues.py) listen here through the `FloeStorage` connection, and Floe sends its messages
#   here through FLOE_AZURE_CONNECTION_STRING (functions.tf); functions/root.py refuses to start when the
#   two name different accounts. Terraform manages its tables, queues and container through Azure Resource
#   Manager only (versions.tf: data_plane_available = false).
# - `host` is the Functions host's own storage (AzureWebJobsStorage: timer locks, host keys, the timer
#   trigger's schedule monitor). Kept apart so that the host's blobs stay out of the account that holds
#   the state, the runners (runners.tf) get no role on them, and `state_replication_type` applies to
#   Floe's state only.
# - `deployment` holds only the Flex Consumption deployment package (the `app-package` container). It is
#   kept apart so that publishing never writes into the account that holds the state.

locals {
  # The names Floe uses in code (core/repository.py, core/triggers/, core/clusters.py, core/notify/,
  # core/messages.py, core/store/azure/__init__.py), before FLOE_STORAGE_PREFIX is prepended. tests/infra checks this list
  # against the code. Floe would create a missing one itself; declaring them gives them an owner
  # (`terraform destroy` removes them) and makes the queues exist before the triggers start listening.
  floe_tables = [
    "jobs", "runs", "runindex", "taskref", "active", "idem", "meta", "clusters", "triggers",
    "destinations", "notifications",
  ]
  # floe-tasks: task starts for `floe runner` hosts (FLOE_TASKS=runners; core/messages.py TASK_QUEUE).
  # floe-work-poison: where the Functions host moves a message that failed 5 times (functions/queues.py).
  # Floe's own hosts keep such messages as blobs (core/poison.py), so floe-tasks needs no poison queue.
  floe_queues     = ["floe-work", "floe-work-poison", "floe-tasks"]
  floe_containers = ["floe"]
  # Per-runner queues (`floe-host-<host id>`) get names only at run time: each runner creates its own and
  # deletes it when it stops.

  deployment_container = "app-package"
}

resource "azurerm_storage_account" "state" {
  name                            = local.state_account_name
  resource_group_name             = azurerm_resource_group.main.name
  location                        = azurerm_resource_group.main.location
  account_kind                    = "StorageV2"
  account_tier                    = "Standard"
  account_replication_type        = var.state_replication_type
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  # Off: every client of this account signs in with Microsoft Entra ID, so its keys open nothing and no
  # connection string with a key exists anywhere (app settings, Terraform outputs).
  shared_access_key_enabled = false
  tags                      = local.tags
}

resource "azurerm_storage_table" "floe" {
  for_each = toset(local.floe_tables)
  name     = "${var.storage_prefix}${each.key}"
  # The account id, not its name: with the id the table is managed through Azure Resource Manager (azurerm
  # 4.77 and later); with the name, through the data plane with the account key, which this account refuses.
  storage_account_id = azurerm_storage_account.state.id
}

resource "azurerm_storage_queue" "floe" {
  for_each           = toset(local.floe_queues)
  name               = "${var.storage_prefix}${each.key}"
  storage_account_id = azurerm_storage_account.state.id
}

resource "azurerm_storage_container" "floe" {
  for_each              = toset(local.floe_containers)
  name                  = "${var.storage_prefix}${each.key}"
  storage_account_id    = azurerm_storage_account.state.id
  container_access_type = "private"
}

resource "azurerm_storage_account" "host" {
  name                            = local.host_account_name
  resource_group_name             = azurerm_resource_group.main.name
  location                        = azurerm_resource_group.main.location
  account_kind                    = "StorageV2"
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  # Off, as on `state`: the host signs in as the app's identity (functions.tf).
  shared_access_key_enabled = false
  tags                      = local.tags
}

resource "azurerm_storage_account" "deployment" {
  name                            = local.deployment_account_name
  resource_group_name             = azurerm_resource_group.main.name
  location                        = azurerm_resource_group.main.location
  account_kind                    = "StorageV2"
  account_tier                    = "Standard"
  account_replication_type        = "LRS"
  min_tls_version                 = "TLS1_2"
  https_traffic_only_enabled      = true
  allow_nested_items_to_be_public = false
  tags                            = local.tags
}

resource "azurerm_storage_container" "deployment" {
  name                  = local.deployment_container
  storage_account_id    = azurerm_storage_account.deployment.id
  container_access_type = "private"
}
