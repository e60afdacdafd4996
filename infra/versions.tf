# Terraform and provider versions. azurerm 4.46 is the first release with every resource and argument used
# here: `azurerm_function_app_flex_consumption` and `storage_account_id` on containers and queues.
terraform {
  required_version = ">= 1.6.0"

  required_providers {
    azurerm = {
      source  = "hashicorp/azurerm"
      version = "~> 4.46"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }
}

provider "azurerm" {
  features {}

  # null: taken from ARM_SUBSCRIPTION_ID (azurerm 4.x needs the subscription one way or the other).
  subscription_id = var.subscription_id
}
