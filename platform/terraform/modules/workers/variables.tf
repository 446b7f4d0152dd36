variable "environment" {
  description = "Environment name: prefixes names and is the Environment tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.environment))
    error_message = "The environment must be 2-24 lower-case letters, digits or '-'."
  }
}

variable "name" {
  description = "Pool name: the ASG and launch template are <environment>-<name>, instances are tagged Name=<environment>-<name>. The default pool is \"compute\"."
  type        = string
  default     = "compute"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "The pool name must be lower-case letters, digits or '-', starting with a letter."
  }
}

variable "subnet_ids" {
  description = "Subnets the pool spreads over (the compute subnets, one per zone)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "At least one subnet is needed."
  }
}

variable "security_group_ids" {
  description = "Security groups of the workers."
  type        = list(string)
}

variable "instance_profile_name" {
  description = "IAM instance profile of the workers."
  type        = string
}

variable "ami_id" {
  description = "AMI of the workers."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "The ami_id must be an AMI id."
  }
}

variable "root_device_name" {
  description = "Root device name of the AMI (e.g. /dev/sda1 on Ubuntu)."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the workers."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "The instance_type must be an EC2 instance type such as t3.large."
  }
}

variable "key_name" {
  description = "EC2 key pair installed for the image's default user."
  type        = string
}

variable "user_data" {
  description = "cloud-init user data (plain text cloud-config, at most 16 KiB: checked by the launch template)."
  type        = string
}

variable "desired_count" {
  description = "Desired number of workers."
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
  description = "Load balancer target groups the workers register in (none by default: Services of type LoadBalancer are the cloud controller's business)."
  type        = list(string)
  default     = []
}

variable "root_volume_size" {
  description = "Root volume size of a worker, in GiB (images and container layers live there)."
  type        = number
  default     = 50

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384
    error_message = "The root_volume_size must be 8-16384 GiB."
  }
}
