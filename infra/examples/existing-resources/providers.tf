# Real AWS: leave aws_endpoint_url null and use your usual credentials.
#
# moto (or another local emulator): set aws_endpoint_url, e.g.
#   terraform apply -var-file=moto.tfvars -var aws_endpoint_url=http://127.0.0.1:5000
# with fake credentials in the environment (AWS_ACCESS_KEY_ID=test ...).
# Every service the module uses is then sent there, and the checks that
# only make sense against AWS itself are skipped.
locals {
  emulated = var.aws_endpoint_url != null
}

provider "aws" {
  region = var.region

  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated
  s3_use_path_style           = local.emulated

  endpoints {
    cloudwatch     = var.aws_endpoint_url
    dynamodb       = var.aws_endpoint_url
    ec2            = var.aws_endpoint_url
    iam            = var.aws_endpoint_url
    kms            = var.aws_endpoint_url
    lambda         = var.aws_endpoint_url
    logs           = var.aws_endpoint_url
    scheduler      = var.aws_endpoint_url
    secretsmanager = var.aws_endpoint_url
    sns            = var.aws_endpoint_url
    sqs            = var.aws_endpoint_url
    sts            = var.aws_endpoint_url
  }

  default_tags {
    tags = {
      project = "pop3-probe"
    }
  }
}
