# Masters: one per etcd member. A member's identity lives in resources that outlive any
# instance: an ENI with the member's fixed address and an encrypted EBS volume with its data,
# both tagged with the member's name. Each member has an ASG of exactly one master in its
# zone's secure subnet; the master reads its member from the EtcdMember instance tag and
# claims the ENI and the volume at boot (templates/etcd-claim.sh.tftpl), so a replaced
# instance comes back as the same member with the same data.

locals {
  user_data_size = length(var.user_data)

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

resource "aws_launch_template" "this" {
  name                   = "${var.environment}-secure"
  description            = "kube-platform ${var.environment} masters"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  key_name               = var.key_name
  user_data              = base64encode(var.user_data)
  vpc_security_group_ids = [var.security_group_id]
  update_default_version = true

  iam_instance_profile {
    name = var.instance_profile_name
  }

  # IMDSv2 only; instance tags readable from IMDS (the claim reads EtcdMember there). A hop
  # limit of 1 keeps the node's role credentials away from pods.
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
    instance_metadata_tags      = "enabled"
  }

  lifecycle {
    # The local AWS (moto 5.2) reports the template's own tags as an extra tag_specifications
    # block of type "launch-template", which no template can declare: a perpetual diff. The
    # root volume tags below are constant per environment, so ignoring later changes is safe.
    ignore_changes = [tag_specifications]

    # EC2 limits user data to 16 KiB before base64 encoding. (A local, so that the error
    # shows the size rather than the whole document.)
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html
    precondition {
      condition     = local.user_data_size <= 16384
      error_message = "The user data is ${local.user_data_size} bytes; EC2 allows at most 16384."
    }
  }

  # Root volumes carry the environment's tags (instances get theirs from the ASG).
  tag_specifications {
    resource_type = "volume"
    tags          = { Name = "${var.environment}-secure", Environment = var.environment, Layer = "secure", ManagedBy = "kube-platform" }
  }

  block_device_mappings {
    device_name = var.root_device_name

    ebs {
      volume_size           = var.root_volume_size
      volume_type           = "gp3"
      encrypted             = true
      delete_on_termination = true
    }
  }
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
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  dynamic "tag" {
    for_each = merge(local.member_tags[each.key], { Name = "${var.environment}-secure", ManagedBy = "kube-platform" })
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}
