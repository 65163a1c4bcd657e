output "identity_arn" {
  description = "ARN of the SES identity (the only resource the app may send from)."
  value       = aws_sesv2_email_identity.this.arn
}

output "domain" {
  description = "The verified sending domain."
  value       = aws_sesv2_email_identity.this.email_identity
}

output "dkim_records" {
  description = "CNAME records to publish in the domain's DNS so SES can verify it and sign with DKIM."
  value = [for token in aws_sesv2_email_identity.this.dkim_signing_attributes[0].tokens : {
    name  = "${token}._domainkey.${var.domain}"
    type  = "CNAME"
    value = "${token}.dkim.amazonses.com"
  }]
}
