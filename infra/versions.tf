terraform {
  # 1.9 is the first release whose variable validations may refer to other
  # variables (timeout vs. schedule interval, M-of-N alarm datapoints).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
