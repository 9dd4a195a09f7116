# Alert state: one item per monitor (last status, consecutive failures,
# last notification). Tiny and rarely read, so on-demand billing.
#
# create_state_table = false uses a table that exists already (named by
# state_table_name): for instance one replica of a global table that
# stacks in several regions share. It must have the same key schema.
resource "aws_dynamodb_table" "state" {
  count = var.create_state_table ? 1 : 0

  name         = local.state_table_name
  billing_mode = "PAY_PER_REQUEST"
  hash_key     = "monitor"

  attribute {
    name = "monitor"
    type = "S"
  }

  point_in_time_recovery {
    enabled = true
  }

  server_side_encryption {
    enabled     = true
    kms_key_arn = local.kms_key_arn
  }

  tags = local.tags
}

locals {
  # An existing table may live in another region (state_table_region: the
  # vantages' shared table in the home region); the function's DynamoDB
  # client then talks to that region, so the role must name it there.
  state_table_region = coalesce(var.state_table_region, local.region)
  state_table_arn    = var.create_state_table ? aws_dynamodb_table.state[0].arn : "arn:${local.partition}:dynamodb:${local.state_table_region}:${local.account_id}:table/${local.state_table_name}"
}
