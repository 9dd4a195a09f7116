# Where Terraform keeps this deployment's state. Without a backend block the
# state is a local terraform.tfstate in this directory: fine for a first
# try, not for a team (it holds the resource IDs and must not be lost, nor
# be committed). For a shared deployment, uncomment and fill in an S3
# backend with locking, then `terraform init -migrate-state`:
#
# terraform {
#   backend "s3" {
#     bucket       = "my-org-terraform-state"     # versioned, encrypted, private
#     key          = "pop3-probe/eu-west-1/terraform.tfstate"
#     region       = "eu-west-1"
#     encrypt      = true
#     use_lockfile = true                         # S3-native locking (Terraform >= 1.10)
#     # dynamodb_table = "terraform-locks"        # the older lock table, if you still use one
#   }
# }
