terraform {
  required_version = ">= 1.10.0, < 2.0.0"

  # Partial configuration: bucket, key, region and dynamodb_table come from the environment's backend file
  # (copy envs/<env>.backend.hcl.example): terraform init -backend-config=envs/<env>.backend.hcl
  backend "s3" {}

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 6.39.0"
    }
    random = {
      source  = "hashicorp/random"
      version = "= 3.7.2"
    }
    tls = {
      source  = "hashicorp/tls"
      version = "= 4.1.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "aegistickets"
      Environment = var.environment
      ManagedBy   = "terraform"
      Repository  = "aegistickets/terraform"
    }
  }
}
