# Every default is prod's: safe for production (Multi-AZ, deletion protection, final snapshot, NAT per AZ,
# nothing force-deleted). Another environment sets what it changes in its envs/<env>.tfvars, so a value
# left out there never makes it less safe.
variable "environment" {
  description = "Environment name: part of every resource and secret name, and its Environment tag."
  type        = string

  validation {
    # A fixed list rather than a pattern: a misspelt name would plan a whole new set of resources.
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be \"dev\" or \"prod\" (a new environment is added to this list with its envs/<env>.*.example files)."
  }
}

variable "region" {
  description = "AWS region of the environment."
  type        = string
  default     = "eu-central-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region code such as eu-central-1."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the environment's VPC."
  type        = string
  default     = "10.1.0.0/16"
}

variable "availability_zones" {
  description = "Availability zones of the region for the subnets (and nodes); at least 2."
  type        = list(string)
  default     = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "availability_zones must list at least 2 zones."
  }
}

variable "single_nat_gateway" {
  description = "One shared NAT gateway (cheaper) instead of one per AZ."
  type        = bool
  default     = false
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version (1.28 or newer, \"1.MINOR\")."
  type        = string
  default     = "1.33"

  validation {
    condition     = can(regex("^1\\.[0-9]{2}$", var.kubernetes_version)) && try(tonumber(split(".", var.kubernetes_version)[1]) >= 28, false)
    error_message = "kubernetes_version must look like \"1.MINOR\" and be 1.28 or newer."
  }
}

variable "cluster_endpoint_public_access" {
  description = "Expose the Kubernetes API publicly, restricted to cluster_endpoint_public_access_cidrs."
  type        = bool
  default     = true
}

variable "cluster_endpoint_public_access_cidrs" {
  description = "Operators' egress CIDRs allowed to reach the Kubernetes API (e.g. [\"203.0.113.10/32\"]); never 0.0.0.0/0."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.cluster_endpoint_public_access_cidrs : can(cidrhost(c, 0)) && c != "0.0.0.0/0"])
    error_message = "cluster_endpoint_public_access_cidrs must be valid CIDRs and must not contain 0.0.0.0/0."
  }
}

variable "cluster_admin_principal_arns" {
  description = "Extra IAM roles/users with cluster-admin (the identity running terraform is admin already)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for a in var.cluster_admin_principal_arns : startswith(a, "arn:")])
    error_message = "cluster_admin_principal_arns must be IAM ARNs."
  }
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
  default     = ["m7i.large"]
}

variable "node_desired_size" {
  description = "Desired number of nodes."
  type        = number
  default     = 3
}

variable "node_min_size" {
  description = "Minimum number of nodes."
  type        = number
  default     = 3
}

variable "node_max_size" {
  description = "Maximum number of nodes."
  type        = number
  default     = 6

  validation {
    condition     = var.node_max_size >= 2
    error_message = "node_max_size must be at least 2 (the chart spreads 2+ replicas across nodes)."
  }
}

variable "db_engine_version" {
  description = "PostgreSQL 15 version: \"15\" (current minor, auto-upgraded) or \"15.N\"."
  type        = string
  default     = "15"
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_allocated_storage_gib" {
  description = "Initial database storage in GiB."
  type        = number
  default     = 50
}

variable "db_max_allocated_storage_gib" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
  default     = 500
}

variable "db_multi_az" {
  description = "Synchronous standby in a second AZ."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database."
  type        = bool
  default     = true
}

variable "db_final_snapshot" {
  description = "Take a final snapshot when the database is destroyed."
  type        = bool
  default     = true
}

variable "db_backup_retention_days" {
  description = "Days of automated backups."
  type        = number
  default     = 14
}

variable "secret_recovery_window_days" {
  description = "Days a deleted database secret can still be restored (0 = delete at once, so an environment can be recreated with the same secret names)."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Retention of VPC flow logs, EKS control-plane logs and PostgreSQL logs, in days."
  type        = number
  default     = 365
}

variable "ecr_keep_tagged_images" {
  description = "Tagged images kept in ECR."
  type        = number
  default     = 30
}

variable "ecr_force_delete" {
  description = "Let terraform destroy delete the ECR repository with its images."
  type        = bool
  default     = false
}

variable "media_bucket_name" {
  description = "Name of the media bucket; null = aegistickets-<env>-media-<account id>."
  type        = string
  default     = null
}

variable "media_force_destroy" {
  description = "Let terraform destroy empty and delete the media bucket."
  type        = bool
  default     = false
}

variable "ses_domain" {
  description = "Domain the shop sends email from (SES domain identity), e.g. tickets.example.org."
  type        = string
}

variable "app_namespace" {
  description = "Kubernetes namespace of the app (the chart's release namespace)."
  type        = string
  default     = "aegistickets"
}

variable "app_service_account" {
  description = "Service account of the app pods (the chart's serviceAccount.name)."
  type        = string
  default     = "aegistickets"
}

variable "external_secrets_namespace" {
  description = "Namespace the External Secrets Operator is installed in."
  type        = string
  default     = "external-secrets"
}

variable "external_secrets_service_account" {
  description = "Service account of the External Secrets Operator (referenced by the ClusterSecretStore)."
  type        = string
  default     = "external-secrets"
}
