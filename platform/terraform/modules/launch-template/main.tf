# The launch template of one kind of node: the masters, a worker pool or the bastion. What
# every node shares is written here once: IMDSv2, the encrypted gp3 root volume, the EC2
# user-data limit, the instance profile, and where the security groups go.

locals {
  name = "${var.environment}-${var.name}"

  # The user data is shipped gzip-compressed: cloud-init recognises gzip content and
  # uncompresses it before it reads the #cloud-config inside
  # (https://cloudinit.readthedocs.io/en/latest/explanation/format.html), and the cloud-config
  # text of a master, with its scripts and units, compresses about 3:1, which leaves room under
  # EC2's 16 KiB limit (the plain text of a master was 15.4 KiB).
  user_data_base64 = base64gzip(var.user_data)

  # Sizes in bytes (length() counts characters, not bytes): 3 bytes per 4 base64 characters,
  # less one per "=" of padding (RFC 4648 section 4). What EC2 counts is the compressed size.
  user_data_size      = length(local.user_data_base64) / 4 * 3 - length(regexall("=", local.user_data_base64))
  user_data_text_b64  = base64encode(var.user_data)
  user_data_text_size = length(local.user_data_text_b64) / 4 * 3 - length(regexall("=", local.user_data_text_b64))
}

resource "aws_launch_template" "this" {
  name          = local.name
  description   = var.description
  image_id      = var.ami_id
  instance_type = var.instance_type
  key_name      = var.key_name
  user_data     = local.user_data_base64

  # Security groups go on the template, unless the template declares a network interface (for
  # a public address): "If you specify a network interface, you must specify any security
  # groups as part of the network interface instead of using this parameter."
  # https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RequestLaunchTemplateData.html
  vpc_security_group_ids = var.associate_public_ip_address ? null : var.security_group_ids
  update_default_version = true

  iam_instance_profile {
    name = var.instance_profile_name
  }

  dynamic "network_interfaces" {
    for_each = var.associate_public_ip_address ? [true] : []
    content {
      device_index                = 0
      associate_public_ip_address = true
      security_groups             = var.security_group_ids
      delete_on_termination       = true
    }
  }

  # IMDSv2 only; instance tags readable from IMDS (a master's etcd claim reads its EtcdMember
  # tag there). A hop limit of 1 keeps the node's role credentials away from pods.
  # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-options.html
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

    # EC2 limits user data to 16 KiB before base64 encoding, here the gzip-compressed bytes.
    # (A local, so that the error shows the size rather than the whole document.)
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-add-user-data.html
    precondition {
      condition     = local.user_data_size <= 16384
      error_message = "Launch template ${local.name}: the user data is ${local.user_data_size} bytes gzip-compressed (${local.user_data_text_size} bytes of text); EC2 allows at most 16384."
    }
  }

  # Root volumes carry the environment's tags (instances get theirs from their ASG:
  # default_tags do not reach volumes created at launch).
  tag_specifications {
    resource_type = "volume"
    tags          = { Name = local.name, Environment = var.environment, Layer = var.layer, ManagedBy = "kube-platform" }
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
