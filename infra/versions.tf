terraform {
  # 1.9 is the first release whose variable validations may refer to other
  # variables (timeout vs. schedule interval, M-of-N alarm datapoints).
  required_version = ">= 1.9.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100 and every 6.x: the module uses no argument or attribute that
      # the 6.0 upgrade guide removes or deprecates (the region comes from
      # data.aws_region's `id`, which both majors set to the region name;
      # `name` is deprecated in 6.x and `region` does not exist in 5.x).
      version = ">= 5.100, < 7.0"
    }
  }
}
