# DNS: the private zone (etcd members, the internal API name) and, optionally, the public zone
# with the public API name.
#
# The private zone is associated with the VPC by its inline `vpc` block, which Route53 needs at
# creation (a zone created without a VPC is public). Changes to `vpc` are ignored: the provider
# documents that pattern for zones whose associations are managed outside the block, and some
# AWS-compatible endpoints (moto) read the association back empty, which would otherwise be a
# perpetual diff. A separate aws_route53_zone_association for this same VPC would be rejected
# by Route53 (ConflictingDomainExists); use that resource only for additional VPCs.
# https://registry.terraform.io/providers/hashicorp/aws/latest/docs/resources/route53_zone

resource "aws_route53_zone" "private" {
  name          = var.private_zone
  comment       = "kube-platform private zone"
  force_destroy = true # records other tools add in the environment's own zone go with it

  vpc {
    vpc_id = var.vpc_id
  }

  lifecycle {
    ignore_changes = [vpc]
  }
}

resource "aws_route53_record" "etcd" {
  for_each = var.etcd_records

  zone_id = aws_route53_zone.private.zone_id
  name    = each.key
  type    = "A"
  ttl     = 300
  records = [each.value]

  lifecycle {
    precondition {
      condition     = endswith(each.key, ".${var.private_zone}")
      error_message = "The record ${each.key} is not inside the private zone ${var.private_zone}."
    }
  }
}

resource "aws_route53_record" "kubeapi_internal" {
  zone_id = aws_route53_zone.private.zone_id
  name    = var.kubeapi_internal_name
  type    = "A"

  alias {
    name                   = var.internal_lb.dns_name
    zone_id                = var.internal_lb.zone_id
    evaluate_target_health = false
  }

  lifecycle {
    precondition {
      condition     = endswith(var.kubeapi_internal_name, ".${var.private_zone}")
      error_message = "The kubeapi_internal_name ${var.kubeapi_internal_name} is not inside the private zone ${var.private_zone}."
    }
  }
}

resource "aws_route53_zone" "public" {
  count = var.manage_public_zone ? 1 : 0

  name    = var.public_zone
  comment = "kube-platform public zone"
}

resource "aws_route53_record" "kubeapi_public" {
  count = var.manage_public_zone ? 1 : 0

  zone_id = aws_route53_zone.public[0].zone_id
  name    = var.kubeapi_public_name
  type    = "A"

  alias {
    name                   = var.public_lb.dns_name
    zone_id                = var.public_lb.zone_id
    evaluate_target_health = false
  }

  lifecycle {
    precondition {
      condition     = endswith(var.kubeapi_public_name, ".${var.public_zone}")
      error_message = "The kubeapi_public_name ${var.kubeapi_public_name} is not inside the public zone ${var.public_zone}."
    }
  }
}
