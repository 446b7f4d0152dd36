variable "environment" {
  description = "Environment name: prefixes names and is the Environment tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.environment))
    error_message = "The environment must be 2-24 lower-case letters, digits or '-'."
  }
}

variable "name" {
  description = "Pool name: the ASG is <environment>-<name> and its instances are tagged Name=<environment>-<name>. The default worker pool is \"compute\", the bastion \"bastion\"."
  type        = string
  default     = "compute"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "The pool name must be lower-case letters, digits or '-', starting with a letter."
  }
}

variable "layer" {
  description = "Network layer of the pool, its instances' Layer tag: compute (workers) or bastion."
  type        = string
  default     = "compute"

  validation {
    condition     = contains(["compute", "bastion"], var.layer)
    error_message = "The layer of a pool must be compute or bastion (masters have their own module)."
  }
}

variable "subnet_ids" {
  description = "Subnets the pool spreads over, one per zone (the compute subnets; the mgmt subnets for the bastion, so that the ASG replaces it in another zone if one fails)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "At least one subnet is needed."
  }
}

variable "launch_template" {
  description = "The pool's launch template (an instance of modules/launch-template): { id, latest_version }; the ASG launches its latest version."
  type = object({
    id             = string
    latest_version = number
  })
}

variable "desired_count" {
  description = "Desired number of instances (the ASG's desired capacity)."
  type        = number

  validation {
    condition     = var.desired_count >= 0 && floor(var.desired_count) == var.desired_count
    error_message = "The desired_count must be a whole number >= 0."
  }
}

variable "min_count" {
  description = "Lower bound of the ASG."
  type        = number
  default     = 0

  validation {
    condition     = var.min_count >= 0 && floor(var.min_count) == var.min_count
    error_message = "The min_count must be a whole number >= 0."
  }
}

variable "max_count" {
  description = "Upper bound of the ASG (>= desired_count)."
  type        = number

  validation {
    condition     = var.max_count >= 0 && floor(var.max_count) == var.max_count
    error_message = "The max_count must be a whole number >= 0."
  }
}

variable "target_group_arns" {
  description = "Load balancer target groups the instances register in (none by default: Services of type LoadBalancer are the cloud controller's business)."
  type        = list(string)
  default     = []
}

variable "kubernetes_cluster" {
  description = "Name of the Kubernetes cluster whose nodes this pool runs (tags its instances kubernetes.io/cluster/<name>=owned for the AWS cloud-controller-manager); null for a pool of non-nodes such as the bastion."
  type        = string
  default     = null

  validation {
    condition     = var.kubernetes_cluster == null || can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.kubernetes_cluster))
    error_message = "The kubernetes_cluster must be an environment name (2-24 lower-case letters, digits or '-') or null."
  }
}
