variable "name" {
  description = "Secret name, stable and human-chosen (e.g. aegistickets/dev/database); the chart's ExternalSecret refers to it by this name, never by the ARN's random suffix."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", var.name)) && !can(regex("-[A-Za-z0-9]{6}$", var.name))
    error_message = "name may contain letters, digits and /_+=.@- and must not end in a hyphen plus six characters (Secrets Manager's ARN suffix)."
  }
}

variable "django_secret_key_name" {
  description = "Name of the second secret: a generated DJANGO_SECRET_KEY as a plain string (the chart's externalSecrets.djangoSecretKey.remoteKey)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_+=.@-]{1,512}$", var.django_secret_key_name)) && !can(regex("-[A-Za-z0-9]{6}$", var.django_secret_key_name))
    error_message = "django_secret_key_name may contain letters, digits and /_+=.@- and must not end in a hyphen plus six characters."
  }
}

variable "description" {
  description = "Description of the secret."
  type        = string
  default     = "AegisTickets PostgreSQL credentials"
}

variable "db_username" {
  description = "Database user name."
  type        = string
}

variable "db_password" {
  description = "Database password."
  type        = string
  sensitive   = true
}

variable "db_host" {
  description = "Database hostname."
  type        = string
}

variable "db_port" {
  description = "Database port."
  type        = number
  default     = 5432
}

variable "db_name" {
  description = "Database name."
  type        = string
}

variable "recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once; 7-30 otherwise)."
  type        = number
  default     = 7

  validation {
    condition     = var.recovery_window_days == 0 || (var.recovery_window_days >= 7 && var.recovery_window_days <= 30)
    error_message = "recovery_window_days must be 0 or between 7 and 30."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
