# A pool of nodes: an ASG across the given subnets, launching the latest version of a launch
# template (modules/launch-template, made by the root module so that the module tree stays
# flat: https://developer.hashicorp.com/terraform/language/modules/develop/composition).
# Reusable: the root module instantiates it for the default worker pool ("compute") and for
# the bastion (a pool of exactly one in the public mgmt subnets, layer "bastion"); another
# worker pool (another instance type) is one more launch template and one more module block.

resource "aws_autoscaling_group" "this" {
  name                = "${var.environment}-${var.name}"
  min_size            = var.min_count
  max_size            = var.max_count
  desired_capacity    = var.desired_count
  vpc_zone_identifier = var.subnet_ids
  target_group_arns   = var.target_group_arns
  health_check_type   = "EC2"

  launch_template {
    id      = var.launch_template.id
    version = var.launch_template.latest_version
  }

  # Instance tags (the provider's default_tags do not reach instances launched by an ASG).
  # scale-compute finds the worker ASG by Layer=compute, agent-setup the bastion by
  # Layer=bastion (src/commands/scale.ts, src/ssh/inventory.ts). Kubernetes nodes also carry
  # kubernetes.io/cluster/<cluster>=owned, the tag by which the AWS cloud-controller-manager
  # finds the cluster's instances (https://cloud-provider-aws.sigs.k8s.io/prerequisites/).
  dynamic "tag" {
    for_each = merge(
      {
        Name        = "${var.environment}-${var.name}"
        Environment = var.environment
        Layer       = var.layer
        ManagedBy   = "kube-platform"
      },
      var.kubernetes_cluster == null ? {} : { "kubernetes.io/cluster/${var.kubernetes_cluster}" = "owned" },
    )
    content {
      key                 = tag.key
      value               = tag.value
      propagate_at_launch = true
    }
  }

  lifecycle {
    precondition {
      condition     = var.min_count <= var.desired_count && var.desired_count <= var.max_count
      error_message = "Pool ${var.name}: need min_count (${var.min_count}) <= desired_count (${var.desired_count}) <= max_count (${var.max_count})."
    }
  }
}
