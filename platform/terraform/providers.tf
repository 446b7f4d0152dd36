provider "aws" {
  region = var.region

  # Tags on every resource that supports them. ASG-propagated instance tags are set by the
  # modules themselves: default_tags do not reach instances launched by an ASG.
  default_tags {
    tags = {
      Environment = var.environment
      ManagedBy   = "kube-platform"
    }
  }
}
