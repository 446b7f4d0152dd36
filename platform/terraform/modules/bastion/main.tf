# The bastion: an ASG of one instance with a public address in the mgmt subnets, the only
# host reachable by SSH from outside (operators reach the private nodes by ProxyJump).

locals {
  user_data_size = length(var.user_data)
}

resource "aws_launch_template" "this" {
  name                   = "${var.environment}-bastion"
  description            = "kube-platform ${var.environment} bastion"
  image_id               = var.ami_id
  instance_type          = var.instance_type
  key_name               = var.key_name
  user_data              = base64encode(var.user_data)
  update_default_version = true

  iam_instance_profile {
    name = var.instance_profile_name
  }

  network_interfaces {
    device_index                = 0
    associate_public_ip_address = true
    security_groups             = [var.security_group_id]
    delete_on_termination       = true
  }

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
    tags          = { Name = "${var.environment}-bastion", Environment = var.environment, Layer = "bastion", ManagedBy = "kube-platform" }
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
  name                = "${var.environment}-bastion"
  min_size            = 1
  max_size            = 1
  desired_capacity    = 1
  vpc_zone_identifier = var.subnet_ids
  health_check_type   = "EC2"

  launch_template {
    id      = aws_launch_template.this.id
    version = aws_launch_template.this.latest_version
  }

  dynamic "tag" {
    for_each = {
      Name        = "${var.environment}-bastion"
      Environment = var.environment
      Layer       = "bastion"
      ManagedBy   = "kube-platform"
    }
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }
}
