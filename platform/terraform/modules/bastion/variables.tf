variable "environment" {
  description = "Environment name: prefixes names and is the Environment tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.environment))
    error_message = "The environment must be 2-24 lower-case letters, digits or '-'."
  }
}

variable "subnet_ids" {
  description = "Public subnets for the bastion (the mgmt subnets); the ASG replaces it in another zone if one fails."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "At least one subnet is needed."
  }
}

variable "security_group_id" {
  description = "Security group of the bastion (SSH from ssh_access_list)."
  type        = string
}

variable "instance_profile_name" {
  description = "IAM instance profile of the bastion."
  type        = string
}

variable "ami_id" {
  description = "AMI of the bastion."
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
  description = "EC2 instance type of the bastion."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.instance_type))
    error_message = "The instance_type must be an EC2 instance type such as t3.micro."
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

variable "root_volume_size" {
  description = "Root volume size of the bastion, in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384
    error_message = "The root_volume_size must be 8-16384 GiB."
  }
}
