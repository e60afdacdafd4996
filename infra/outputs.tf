output "api_url" {
  description = "Base URL of Floe's Jobs API: use it as DATABRICKS_HOST for the Databricks SDK and CLI."
  value       = "https://${azurerm_function_app_flex_consumption.main.default_hostname}"
}

output "function_app_name" {
  description = "The Function App to publish Floe to (func azure functionapp publish <name>)."
  value       = azurerm_function_app_flex_consumption.main.name
}

output "resource_group_name" {
  description = "The resource group holding every resource."
  value       = azurerm_resource_group.main.name
}

output "state_storage_account_name" {
  description = "The storage account holding Floe's state (tables, queues, the blob container): FLOE_AZURE_CONNECTION_STRING=AccountName=<this name> for Floe hosts outside Azure Functions."
  value       = azurerm_storage_account.state.name
}

output "host_storage_account_name" {
  description = "The Functions host's own storage account (AzureWebJobsStorage: timer locks, host keys); Floe keeps nothing there."
  value       = azurerm_storage_account.host.name
}

output "deployment_storage_account_name" {
  description = "The storage account holding the Function App's deployment package."
  value       = azurerm_storage_account.deployment.name
}

output "application_insights_connection_string" {
  description = "Connection string of Application Insights: APPLICATIONINSIGHTS_CONNECTION_STRING for Floe hosts outside Azure Functions."
  value       = azurerm_application_insights.main.connection_string
  sensitive   = true
}

output "admin_token" {
  description = "An admin bearer token for Floe's API (FLOE_ADMIN_TOKEN): use it as DATABRICKS_TOKEN."
  value       = local.admin_token
  sensitive   = true
}

output "workbook_id" {
  description = "Resource id of the Floe workbook (Azure portal: Application Insights > Workbooks)."
  value       = azurerm_application_insights_workbook.main.id
}
