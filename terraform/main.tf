# One environment = one VPC, one EKS cluster, one RDS instance and the IAM roles the chart's pods assume.
# Every environment applies this one configuration; they differ only in values: envs/<env>.tfvars (the
# environment's name and shape) and envs/<env>.backend.hcl (its own state). docs/deploy.md, section 1.
locals {
  name         = "aegistickets-${var.environment}"
  cluster_name = local.name
  media_bucket = coalesce(var.media_bucket_name, "${local.name}-media-${data.aws_caller_identity.current.account_id}")
}

data "aws_caller_identity" "current" {}

module "network" {
  source = "./modules/network"

  name                    = local.name
  cluster_name            = local.cluster_name
  cidr_block              = var.vpc_cidr
  availability_zones      = var.availability_zones
  single_nat_gateway      = var.single_nat_gateway
  flow_log_retention_days = var.log_retention_days
}

module "eks" {
  source = "./modules/eks"

  cluster_name           = local.cluster_name
  kubernetes_version     = var.kubernetes_version
  private_subnet_ids     = module.network.private_subnet_ids
  endpoint_public_access = var.cluster_endpoint_public_access
  public_access_cidrs    = var.cluster_endpoint_public_access_cidrs
  admin_principal_arns   = var.cluster_admin_principal_arns
  node_instance_types    = var.node_instance_types
  node_desired_size      = var.node_desired_size
  node_min_size          = var.node_min_size
  node_max_size          = var.node_max_size
  log_retention_days     = var.log_retention_days
}

module "ecr" {
  source = "./modules/ecr"

  name               = local.name
  keep_tagged_images = var.ecr_keep_tagged_images
  force_delete       = var.ecr_force_delete
}

module "rds" {
  source = "./modules/rds"

  identifier                 = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.node_security_group_id]
  engine_version             = var.db_engine_version
  instance_class             = var.db_instance_class
  allocated_storage_gib      = var.db_allocated_storage_gib
  max_allocated_storage_gib  = var.db_max_allocated_storage_gib
  multi_az                   = var.db_multi_az
  deletion_protection        = var.db_deletion_protection
  final_snapshot             = var.db_final_snapshot
  backup_retention_days      = var.db_backup_retention_days
  log_retention_days         = var.log_retention_days
}

module "db_secret" {
  source = "./modules/secrets"

  name                   = "aegistickets/${var.environment}/database"
  django_secret_key_name = "aegistickets/${var.environment}/django-secret-key"
  db_username            = module.rds.username
  db_password            = module.rds.password
  db_host                = module.rds.address
  db_port                = module.rds.port
  db_name                = module.rds.database_name
  recovery_window_days   = var.secret_recovery_window_days
}

module "media" {
  source = "./modules/media"

  bucket_name   = local.media_bucket
  force_destroy = var.media_force_destroy
}

module "email" {
  source = "./modules/email"

  domain = var.ses_domain
}

# --- IRSA roles: one per service account, each allowed exactly what that pod needs ---

module "lb_controller_irsa" {
  source = "./modules/irsa"

  role_name                   = "${local.name}-aws-load-balancer-controller"
  oidc_provider_arn           = module.eks.oidc_provider_arn
  oidc_provider_url           = module.eks.oidc_provider_url
  namespace                   = "kube-system"
  service_account             = "aws-load-balancer-controller"
  attach_lb_controller_policy = true
}

# External Secrets may read the app's secrets (database, DJANGO_SECRET_KEY, and the Stripe keys an operator stores
# by hand so that they never pass through Terraform state: docs/deploy.md) and nothing else. Secrets Manager appends
# "-" and six characters to a secret's name in its ARN.
data "aws_iam_policy_document" "external_secrets" {
  statement {
    sid     = "ReadAppSecrets"
    actions = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret", "secretsmanager:ListSecretVersionIds"]
    resources = [
      module.db_secret.secret_arn,
      module.db_secret.django_secret_key_arn,
      "arn:aws:secretsmanager:${var.region}:${data.aws_caller_identity.current.account_id}:secret:aegistickets/${var.environment}/stripe-??????",
    ]
  }

  statement {
    sid       = "DecryptThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [module.db_secret.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

module "external_secrets_irsa" {
  source = "./modules/irsa"

  role_name         = "${local.name}-external-secrets"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider_url = module.eks.oidc_provider_url
  namespace         = var.external_secrets_namespace
  service_account   = var.external_secrets_service_account
  policy_json       = data.aws_iam_policy_document.external_secrets.json
}

# The app: its media bucket, sending mail from its SES identity, reading its database secret.
data "aws_iam_policy_document" "app" {
  statement {
    sid       = "ListMediaBucket"
    actions   = ["s3:ListBucket"]
    resources = [module.media.bucket_arn]
  }

  statement {
    sid       = "ReadWriteMedia"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = ["${module.media.bucket_arn}/*"]
  }

  statement {
    sid       = "MediaEncryption"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [module.media.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "SendEmailFromShopDomain"
    actions   = ["ses:SendEmail", "ses:SendRawEmail"]
    resources = [module.email.identity_arn]
  }

  statement {
    sid       = "ReadDatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [module.db_secret.secret_arn]
  }

  statement {
    sid       = "DecryptDatabaseSecret"
    actions   = ["kms:Decrypt"]
    resources = [module.db_secret.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${var.region}.amazonaws.com"]
    }
  }
}

module "app_irsa" {
  source = "./modules/irsa"

  role_name         = "${local.name}-app"
  oidc_provider_arn = module.eks.oidc_provider_arn
  oidc_provider_url = module.eks.oidc_provider_url
  namespace         = var.app_namespace
  service_account   = var.app_service_account
  # The chart's migration Job reads the database secret with the app's role when DATABASE_SECRET_ARN is used.
  extra_service_accounts = ["${var.app_service_account}-migrate"]
  policy_json            = data.aws_iam_policy_document.app.json
}
