# The SES domain identity the app sends confirmation emails from (Easy DKIM, 2048-bit keys).
resource "aws_sesv2_email_identity" "this" {
  email_identity = var.domain

  dkim_signing_attributes {
    next_signing_key_length = "RSA_2048_BIT"
  }

  tags = var.tags
}
