output "secret_name" {
  description = "Name of the secret (what the chart's ExternalSecret and DATABASE_SECRET_ARN users refer to)."
  value       = aws_secretsmanager_secret.this.name
}

output "secret_arn" {
  description = "Full ARN of the secret (with Secrets Manager's random suffix)."
  value       = aws_secretsmanager_secret.this.arn
}

output "django_secret_key_name" {
  description = "Name of the DJANGO_SECRET_KEY secret (plain string)."
  value       = aws_secretsmanager_secret.django_secret_key.name
}

output "django_secret_key_arn" {
  description = "Full ARN of the DJANGO_SECRET_KEY secret."
  value       = aws_secretsmanager_secret.django_secret_key.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting both secrets; readers need kms:Decrypt on it."
  value       = aws_kms_key.this.arn
}
