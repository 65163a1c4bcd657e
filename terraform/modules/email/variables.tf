variable "domain" {
  description = "Domain the shop sends email from (e.g. tickets.example.org); publish the DKIM CNAME records from the output, then SES verifies it."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]{2,63}$", var.domain))
    error_message = "domain must be a lowercase DNS domain name such as tickets.example.org."
  }
}

variable "tags" {
  description = "Tags added to every resource of this module."
  type        = map(string)
  default     = {}
}
