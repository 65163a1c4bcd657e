# IAM role for Kubernetes service accounts (IRSA): only <namespace>/<service_account> (and the listed extras) of this cluster can
# assume it, through the cluster's OIDC provider. No access keys exist anywhere.
data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:sub"
      values   = [for sa in concat([var.service_account], var.extra_service_accounts) : "system:serviceaccount:${var.namespace}:${sa}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = var.role_name
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600

  tags = var.tags
}

resource "aws_iam_policy" "custom" {
  count = var.policy_json == null ? 0 : 1

  name   = var.role_name
  policy = var.policy_json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "custom" {
  count = var.policy_json == null ? 0 : 1

  role       = aws_iam_role.this.name
  policy_arn = aws_iam_policy.custom[0].arn
}

resource "aws_iam_policy" "lb_controller" {
  count = var.attach_lb_controller_policy ? 1 : 0

  name   = "${var.role_name}-lbc"
  policy = data.aws_iam_policy_document.lb_controller.json

  tags = var.tags
}

resource "aws_iam_role_policy_attachment" "lb_controller" {
  count = var.attach_lb_controller_policy ? 1 : 0

  role       = aws_iam_role.this.name
  policy_arn = aws_iam_policy.lb_controller[0].arn
}
