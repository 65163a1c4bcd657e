output "bucket_name" {
  description = "Name of the media bucket (AWS_STORAGE_BUCKET_NAME for django-storages)."
  value       = aws_s3_bucket.this.bucket
}

output "bucket_arn" {
  description = "ARN of the media bucket."
  value       = aws_s3_bucket.this.arn
}

output "kms_key_arn" {
  description = "KMS key encrypting the bucket; writers and readers need kms:GenerateDataKey / kms:Decrypt on it."
  value       = aws_kms_key.this.arn
}
