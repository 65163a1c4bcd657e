variable "role_name" {
  description = "Name of the IAM role."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.role_name))
    error_message = "role_name must be a valid IAM role name (max 64 characters)."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
}

variable "oidc_provider_url" {
  description = "Issuer of the EKS cluster's OIDC provider without https:// (oidc.eks.<region>.amazonaws.com/id/<id>)."
  type        = string

  validation {
    condition     = !startswith(var.oidc_provider_url, "https://")
    error_message = "oidc_provider_url must not include the https:// scheme."
  }
}

variable "namespace" {
  description = "Kubernetes namespace of the service account allowed to assume the role."
  type        = string
}

variable "service_account" {
  description = "Name of the Kubernetes service account allowed to assume the role."
  type        = string
}

variable "extra_service_accounts" {
  description = "Other service accounts of the same namespace that may assume the role (e.g. the chart's migration Job in DATABASE_SECRET_ARN mode)."
  type        = list(string)
  default     = []
}

variable "policy_json" {
  description = "IAM policy document (JSON) granted to the role; null when only a built-in policy is attached."
  type        = string
  default     = null

  validation {
    condition     = var.policy_json != null || var.attach_lb_controller_policy
    error_message = "Give the role a policy: policy_json, attach_lb_controller_policy, or both."
  }
}

variable "attach_lb_controller_policy" {
  description = "Grant the AWS Load Balancer Controller's IAM policy (upstream docs/install/iam_policy.json, v2.x)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
