# Masters: one per etcd member. A member's identity lives in resources that outlive any
# instance: an ENI with the member's fixed address and an encrypted EBS volume with its data,
# both tagged with the member's name. Each member has an ASG of exactly one master in its
# zone's secure subnet; the master reads its member from the EtcdMember instance tag and
# claims the ENI and the volume at boot (templates/etcd-claim.sh.tftpl), so a replaced
# instance comes back as the same member with the same data. All masters boot from one launch
# template (modules/launch-template, made by the root module, name <environment>-secure).

locals {
  members = { for m in var.members : m.name => m }

  # Tags of a member's instance, ENI and volume.
  member_tags = {
    for name, m in local.members : name => {
      Environment = var.environment
      Layer       = "secure"
      EtcdMember  = name
    }
  }
}

resource "aws_network_interface" "this" {
  for_each = local.members

  description     = "etcd member ${each.key} of ${var.environment}"
  subnet_id       = var.subnet_ids_by_zone[each.value.availability_zone]
  private_ips     = [each.value.ip]
  security_groups = [var.security_group_id]
  tags            = merge(local.member_tags[each.key], { Name = "${var.environment}-${each.key}" })

  lifecycle {
    precondition {
      condition     = var.subnet_cidrs_by_zone[each.value.availability_zone] == each.value.subnet_cidr
      error_message = "Etcd member ${each.key}: subnet_cidr ${each.value.subnet_cidr} is not the secure subnet of ${each.value.availability_zone}."
    }
  }
}

resource "aws_ebs_volume" "this" {
  for_each = local.members

  availability_zone = each.value.availability_zone
  size              = var.etcd_volume_size
  type              = "gp3"
  encrypted         = true
  kms_key_id        = var.kms_key_arn
  tags              = merge(local.member_tags[each.key], { Name = "${var.environment}-${each.key}" })
}

resource "aws_autoscaling_group" "this" {
  for_each = local.members

  name                = "${var.environment}-${each.key}"
  min_size            = 1
  max_size            = 1
  desired_capacity    = 1
  vpc_zone_identifier = [var.subnet_ids_by_zone[each.value.availability_zone]]
  target_group_arns   = var.target_group_arns

  # EC2 health only: an API server that is down must not get its etcd member's instance
  # replaced (the load balancer stops sending it traffic by its own health check).
  health_check_type         = "EC2"
  health_check_grace_period = 300

  launch_template {
    id      = var.launch_template.id
    version = var.launch_template.latest_version
  }

  dynamic "tag" {
    # kubernetes.io/cluster/<environment>: how the AWS cloud-controller-manager finds the
    # cluster's instances (https://cloud-provider-aws.sigs.k8s.io/prerequisites/).
    for_each = merge(local.member_tags[each.key], {
      Name                                       = "${var.environment}-secure"
      ManagedBy                                  = "kube-platform"
      "kubernetes.io/cluster/${var.environment}" = "owned"
    })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}
