# The Floe dashboard: an Azure Monitor workbook on Application Insights. Its queries are in
# workbook.json.tftpl; tests/infra checks them against core/telemetry/names.py.

resource "azurerm_application_insights_workbook" "main" {
  # A workbook is named by a lowercase GUID: derived, so it is stable across applies.
  name                = uuidv5("url", "https://floe/workbook/${azurerm_resource_group.main.name}")
  display_name        = "Floe jobs (${var.name_prefix})"
  description         = "Runs started and finished, run and task durations, failed runs, queue age, schedule lag and poison messages."
  resource_group_name = azurerm_resource_group.main.name
  location            = azurerm_resource_group.main.location
  source_id           = lower(azurerm_application_insights.main.id)
  category            = "workbook"
  data_json = templatefile("${path.module}/workbook.json.tftpl", {
    app_insights_id = azurerm_application_insights.main.id
  })
  tags = local.tags
}
