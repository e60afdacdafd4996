# Naming and the resource group. Every name derives from `name_prefix` plus a random suffix, because
# storage account names and function app host names are global across Azure.

resource "random_string" "suffix" {
  length  = 6
  upper   = false
  special = false
}

locals {
  suffix = random_string.suffix.result

  # Storage account names: 3-24 lowercase letters and digits (name_prefix is at most 10 characters).
  state_account_name      = "${var.name_prefix}state${local.suffix}"
  host_account_name       = "${var.name_prefix}host${local.suffix}"
  deployment_account_name = "${var.name_prefix}deploy${local.suffix}"

  # At most 32 characters: the Functions host id is the app name cut to 32, and two apps whose cut names
  # collide share timer locks.
  function_app_name = "${var.name_prefix}-jobs-${local.suffix}"

  tags = merge({ application = "floe" }, var.tags)
}

resource "azurerm_resource_group" "main" {
  name     = "rg-${var.name_prefix}-${local.suffix}"
  location = var.location
  tags     = local.tags
}
