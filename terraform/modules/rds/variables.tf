variable "identifier" {
  description = "RDS instance identifier (also the prefix of its subnet group, parameter group and security group)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.identifier)) && !endswith(var.identifier, "-")
    error_message = "identifier must start with a letter, contain only lowercase letters, digits and hyphens and not end with a hyphen."
  }
}

variable "vpc_id" {
  description = "VPC of the database security group."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (2+ AZs) of the DB subnet group. Never public subnets."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "A DB subnet group needs subnets in at least two availability zones."
  }
}

variable "allowed_security_group_ids" {
  description = "Security groups allowed to connect on 5432 (the EKS nodes' security group). Nothing else can reach the database."
  type        = list(string)

  validation {
    condition     = length(var.allowed_security_group_ids) > 0
    error_message = "At least one client security group is needed, otherwise nothing can reach the database."
  }
}

variable "engine_version" {
  description = "PostgreSQL version: major \"15\" (RDS picks the current minor and auto minor upgrades keep it patched) or an exact \"15.N\"."
  type        = string
  default     = "15"

  validation {
    condition     = can(regex("^15(\\.[0-9]+)?$", var.engine_version))
    error_message = "engine_version must be PostgreSQL 15: \"15\" or \"15.N\"."
  }
}

variable "instance_class" {
  description = "DB instance class (dev: db.t4g.micro)."
  type        = string
  default     = "db.t4g.micro"

  validation {
    condition     = startswith(var.instance_class, "db.")
    error_message = "instance_class must be an RDS class such as db.t4g.micro."
  }
}

variable "allocated_storage_gib" {
  description = "Initial gp3 storage, in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage_gib >= 20
    error_message = "allocated_storage_gib must be at least 20."
  }
}

variable "max_allocated_storage_gib" {
  description = "Upper bound for storage autoscaling, in GiB (must exceed allocated_storage_gib)."
  type        = number
  default     = 100
}

variable "database_name" {
  description = "Name of the application database."
  type        = string
  default     = "aegistickets"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must start with a letter and contain only lowercase letters, digits and underscores."
  }
}

variable "master_username" {
  description = "Master user name (the application connects as this user)."
  type        = string
  default     = "aegistickets"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.master_username)
    error_message = "master_username must start with a letter, contain only lowercase letters, digits and underscores, and not be a reserved name."
  }
}

variable "multi_az" {
  description = "Run a synchronous standby in another AZ (prod: true; dev: false to save cost)."
  type        = bool
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (prod: true)."
  type        = bool
}

variable "final_snapshot" {
  description = "Take a final snapshot when the instance is destroyed (prod: true)."
  type        = bool
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 7

  validation {
    condition     = var.backup_retention_days >= 1 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 1 and 35."
  }
}

variable "performance_insights_enabled" {
  description = "Enable Performance Insights (encrypted with the module's KMS key)."
  type        = bool
  default     = true
}

variable "monitoring_interval_seconds" {
  description = "Enhanced Monitoring interval in seconds."
  type        = number
  default     = 60

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.monitoring_interval_seconds)
    error_message = "monitoring_interval_seconds must be one of 1, 5, 10, 15, 30, 60."
  }
}

variable "log_retention_days" {
  description = "Retention of the exported PostgreSQL logs in CloudWatch Logs, in days."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a retention period CloudWatch Logs accepts (e.g. 30, 90, 365)."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
