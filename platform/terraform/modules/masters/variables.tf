variable "environment" {
  description = "Environment name: prefixes names and is the Environment tag (the etcd claim filters on it)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.environment))
    error_message = "The environment must be 2-24 lower-case letters, digits or '-'."
  }
}

variable "members" {
  description = "The etcd members (root variable etcd_members): one ENI, one EBS volume and one ASG of exactly one master each."
  type = list(object({
    name              = string
    index             = number
    availability_zone = string
    subnet_cidr       = string
    ip                = string
    dns_name          = string
  }))

  validation {
    condition     = length(var.members) > 0
    error_message = "At least one etcd member is needed."
  }
}

variable "subnet_ids_by_zone" {
  description = "Secure subnet ID per availability zone; a member's ENI and master live in its zone's subnet."
  type        = map(string)
}

variable "subnet_cidrs_by_zone" {
  description = "Secure subnet CIDR per availability zone, to check that each member's subnet_cidr is its zone's secure subnet."
  type        = map(string)
}

variable "security_group_id" {
  description = "Security group of the masters (instances and etcd ENIs)."
  type        = string
}

variable "instance_profile_name" {
  description = "IAM instance profile of the masters."
  type        = string
}

variable "ami_id" {
  description = "AMI of the masters."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "The ami_id must be an AMI id."
  }
}

variable "root_device_name" {
  description = "Root device name of the AMI (e.g. /dev/sda1 on Ubuntu), for the encrypted root volume mapping."
  type        = string
}

variable "instance_type" {
  description = "EC2 instance type of the masters."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "The instance_type must be an EC2 instance type such as t3.medium."
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

variable "kms_key_arn" {
  description = "KMS key encrypting the etcd volumes."
  type        = string
}

variable "target_group_arns" {
  description = "Load balancer target groups the masters register in (the API load balancers)."
  type        = list(string)
  default     = []
}

variable "root_volume_size" {
  description = "Root volume size of a master, in GiB."
  type        = number
  default     = 30

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384
    error_message = "The root_volume_size must be 8-16384 GiB."
  }
}

variable "etcd_volume_size" {
  description = "Size of each etcd data volume, in GiB (etcd's default space quota is 2 GiB, its maximum recommended 8 GiB)."
  type        = number
  default     = 20

  validation {
    condition     = var.etcd_volume_size >= 1 && var.etcd_volume_size <= 16384
    error_message = "The etcd_volume_size must be 1-16384 GiB."
  }
}
