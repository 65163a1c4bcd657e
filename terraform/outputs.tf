# What the Helm chart and docs/deploy.md need: `terraform output -json` feeds values-<env>.yaml.
output "region" {
  description = "AWS region of the environment."
  value       = var.region
}

output "vpc_id" {
  description = "VPC ID (the AWS Load Balancer Controller is installed with --set vpcId=...)."
  value       = module.network.vpc_id
}

output "vpc_cidr_block" {
  description = "IPv4 CIDR of the VPC (the chart's networkPolicy.albSourceCidrs / databaseCidrs)."
  value       = module.network.vpc_cidr_block
}

output "cluster_name" {
  description = "EKS cluster name (aws eks update-kubeconfig --name ...)."
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint."
  value       = module.eks.cluster_endpoint
}

output "kubeconfig_command" {
  description = "Command that writes a kubeconfig entry for the cluster."
  value       = "aws eks update-kubeconfig --region ${var.region} --name ${module.eks.cluster_name}"
}

output "ecr_repository_url" {
  description = "Where to push the image (docker push <url>:<tag>); the chart's image.repository."
  value       = module.ecr.repository_url
}

output "db_secret_name" {
  description = "Secrets Manager secret holding {username,password,host,port,dbname,url}; the chart's ExternalSecret key."
  value       = module.db_secret.secret_name
}

output "db_secret_arn" {
  description = "Full ARN of the database secret (DATABASE_SECRET_ARN for clusters without External Secrets)."
  value       = module.db_secret.secret_arn
}

output "django_secret_key_secret_name" {
  description = "Secrets Manager secret holding the generated DJANGO_SECRET_KEY (the chart's externalSecrets.djangoSecretKey.remoteKey)."
  value       = module.db_secret.django_secret_key_name
}

output "db_address" {
  description = "Hostname of the PostgreSQL endpoint (private)."
  value       = module.rds.address
}

output "app_namespace" {
  description = "Namespace the chart must be installed into for the app's IRSA role to apply."
  value       = var.app_namespace
}

output "app_service_account" {
  description = "Service account name the chart must use for the app's IRSA role to apply."
  value       = var.app_service_account
}

output "app_irsa_role_arn" {
  description = "IAM role for the app's service account (eks.amazonaws.com/role-arn annotation)."
  value       = module.app_irsa.role_arn
}

output "lb_controller_role_arn" {
  description = "IAM role for kube-system/aws-load-balancer-controller."
  value       = module.lb_controller_irsa.role_arn
}

output "external_secrets_role_arn" {
  description = "IAM role for the External Secrets Operator's service account (referenced by the ClusterSecretStore)."
  value       = module.external_secrets_irsa.role_arn
}

output "external_secrets_namespace" {
  description = "Namespace of the External Secrets Operator service account the role trusts."
  value       = var.external_secrets_namespace
}

output "external_secrets_service_account" {
  description = "Service account name of the External Secrets Operator the role trusts."
  value       = var.external_secrets_service_account
}

output "media_bucket_name" {
  description = "S3 bucket for uploaded media (AWS_STORAGE_BUCKET_NAME)."
  value       = module.media.bucket_name
}

output "ses_identity_arn" {
  description = "SES identity the app sends from."
  value       = module.email.identity_arn
}

output "ses_dkim_records" {
  description = "DNS CNAME records to publish for the SES domain (verification and DKIM)."
  value       = module.email.dkim_records
}
