# One provider per vantage. Modules cannot loop over providers, so the three
# vantages are three module blocks (main.tf), each with its own alias.
#
# moto: set aws_endpoint_url; all regions then share that one endpoint
# (moto keeps regions apart by the request's signing region).
locals {
  emulated = var.aws_endpoint_url != null
  regions  = concat([var.home_region], var.vantage_regions)
}

provider "aws" {
  alias  = "home"
  region = local.regions[0]

  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated

  endpoints {
    cloudwatch     = var.aws_endpoint_url
    dynamodb       = var.aws_endpoint_url
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
      vantage = local.regions[0]
    }
  }
}

provider "aws" {
  alias  = "second"
  region = local.regions[1]

  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated

  endpoints {
    cloudwatch     = var.aws_endpoint_url
    dynamodb       = var.aws_endpoint_url
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
      vantage = local.regions[1]
    }
  }
}

provider "aws" {
  alias  = "third"
  region = local.regions[2]

  skip_credentials_validation = local.emulated
  skip_metadata_api_check     = local.emulated
  skip_region_validation      = local.emulated

  endpoints {
    cloudwatch     = var.aws_endpoint_url
    dynamodb       = var.aws_endpoint_url
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
      vantage = local.regions[2]
    }
  }
}
