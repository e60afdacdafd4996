# Terraform and provider versions. azurerm 4.77 is the first release with every resource and argument used
# here: `azurerm_function_app_flex_consumption`, and `storage_account_id` on containers, queues and tables.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.77"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "azurerm" {
  features {
    storage {
      # The state account refuses keys (storage.tf), and the provider's data-plane calls use one by default:
      # Terraform manages storage through Azure Resource Manager only, with the rights it has there.
      data_plane_available = false
    }
  }

  # Should a data-plane call still happen, it signs in with Entra ID instead of a key.
  storage_use_azuread = true

  # null: taken from ARM_SUBSCRIPTION_ID (azurerm 4.x needs the subscription one way or the other).
  subscription_id = var.subscription_id
}
