# The app's secrets in Secrets Manager, read by External Secrets (synced into the chart's Kubernetes Secret):
# the database credentials as one JSON secret (also read by the app itself when DATABASE_SECRET_ARN is set;
# "url" is ready for DATABASE_URL) and a generated DJANGO_SECRET_KEY.
data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:KMS key policy: Resource "*" means this key only, and the account-root statement is AWS's default key policy (IAM policies then grant use).
  #checkov:skip=CKV_AWS_111:KMS key policy: Resource "*" means this key only (see CKV_AWS_109).
  #checkov:skip=CKV_AWS_356:KMS key policy: Resource "*" means this key only (see CKV_AWS_109).
  statement {
    sid       = "AccountAdministersKey"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy "*" means this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = "Secrets Manager secret ${var.name}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json

  tags = var.tags
}

resource "aws_secretsmanager_secret" "this" {
  #checkov:skip=CKV2_AWS_57:Automatic rotation needs a rotation Lambda that also rewrites "url"; rotation is an operator step (docs/deploy.md, "rotate the DB password": terraform apply -replace=module.rds.random_password.master).
  name                    = var.name
  description             = var.description
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.recovery_window_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "this" {
  secret_id = aws_secretsmanager_secret.this.id
  secret_string = jsonencode({
    username = var.db_username
    password = var.db_password
    host     = var.db_host
    port     = var.db_port
    dbname   = var.db_name
    url      = "postgres://${urlencode(var.db_username)}:${urlencode(var.db_password)}@${var.db_host}:${var.db_port}/${urlencode(var.db_name)}?sslmode=require"
  })
}

resource "random_password" "django_secret_key" {
  length  = 64
  special = true
}

resource "aws_secretsmanager_secret" "django_secret_key" {
  #checkov:skip=CKV2_AWS_57:Rotating DJANGO_SECRET_KEY logs everyone out and invalidates signed links; it is rotated deliberately (docs/deploy.md: terraform apply -replace=module.db_secret.random_password.django_secret_key).
  name                    = var.django_secret_key_name
  description             = "AegisTickets DJANGO_SECRET_KEY"
  kms_key_id              = aws_kms_key.this.arn
  recovery_window_in_days = var.recovery_window_days

  tags = var.tags
}

resource "aws_secretsmanager_secret_version" "django_secret_key" {
  secret_id     = aws_secretsmanager_secret.django_secret_key.id
  secret_string = random_password.django_secret_key.result
}
