# A worker pool: a launch template and an ASG across the given subnets. Reusable: the root
# module instantiates it once for the default pool; more pools (other instance types) are one
# more module block with another name.

locals {
  user_data_size = length(var.user_data)
}

resource "aws_launch_template" "this" {
  name                   = "${var.environment}-${var.name}"
  description            = "kube-platform ${var.environment} worker pool ${var.name}"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  key_name               = var.key_name
  user_data              = base64encode(var.user_data)
  vpc_security_group_ids = var.security_group_ids
  update_default_version = true

  iam_instance_profile {
    name = var.instance_profile_name
  }

  # IMDSv2 only; a hop limit of 1 keeps the node's role credentials away from pods.
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
    tags          = { Name = "${var.environment}-${var.name}", Environment = var.environment, Layer = "compute", ManagedBy = "kube-platform" }
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
  name                = "${var.environment}-${var.name}"
  min_size            = var.min_count
  max_size            = var.max_count
  desired_capacity    = var.desired_count
  vpc_zone_identifier = var.subnet_ids
  target_group_arns   = var.target_group_arns
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  dynamic "tag" {
    for_each = {
      Name        = "${var.environment}-${var.name}"
      Environment = var.environment
      Layer       = "compute"
      ManagedBy   = "kube-platform"
    }
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    precondition {
      condition     = var.min_count <= var.desired_count && var.desired_count <= var.max_count
      error_message = "Worker pool ${var.name}: need min_count (${var.min_count}) <= desired_count (${var.desired_count}) <= max_count (${var.max_count})."
    }
  }
}
