output "state_table_name" {
  description = "The shared state table (home region)."
  value       = aws_dynamodb_table.shared.name
}

output "alert_topic_arn" {
  description = "The one alert topic every vantage publishes to."
  value       = aws_sns_topic.alerts.arn
}

output "vantages" {
  description = "Vantage name => function name (each reads its own region's config secret; put the same monitor list in all three)."
  value = {
    (local.regions[0]) = module.home.function_name
    (local.regions[1]) = module.second.function_name
    (local.regions[2]) = module.third.function_name
  }
}
