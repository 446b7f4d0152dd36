variable "environment" {
  description = "Environment name: prefixes the template's name and is the Environment tag of the root volumes."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.environment))
    error_message = "The environment must be 2-24 lower-case letters, digits or '-'."
  }
}

variable "name" {
  description = "What the nodes are, e.g. secure, compute, bastion: the template is named <environment>-<name> and its root volumes are tagged Name=<environment>-<name>."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "The name must be lower-case letters, digits or '-', starting with a letter (at most 31 characters)."
  }
}

variable "layer" {
  description = "Network layer of the nodes, the Layer tag of their root volumes: secure (masters), compute (workers) or bastion."
  type        = string

  validation {
    condition     = contains(["secure", "compute", "bastion"], var.layer)
    error_message = "The layer must be secure, compute or bastion."
  }
}

variable "description" {
  description = "Description of the template's versions, e.g. \"kube-platform play masters\" (EC2 allows 255 characters)."
  type        = string

  validation {
    condition     = length(var.description) <= 255
    error_message = "The description must be at most 255 characters (EC2 VersionDescription)."
  }
}

variable "ami_id" {
  description = "AMI the nodes boot."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "The ami_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "root_device_name" {
  description = "Root device name of the AMI (its RootDeviceName, e.g. /dev/sda1 on Ubuntu): the block device mapping that makes the root volume an encrypted gp3 volume."
  type        = string

  validation {
    condition     = can(regex("^/dev/[a-z0-9]+$", var.root_device_name))
    error_message = "The root_device_name must be a device such as /dev/sda1 or /dev/xvda."
  }
}

variable "instance_type" {
  description = "EC2 instance type of the nodes, e.g. t3.medium."
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

variable "instance_profile_name" {
  description = "IAM instance profile of the nodes (their role: which layers they may read)."
  type        = string
}

variable "security_group_ids" {
  description = "Security groups of the nodes (on the template, or on its network interface when associate_public_ip_address)."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) > 0 && alltrue([for id in var.security_group_ids : can(regex("^sg-[0-9a-f]+$", id))])
    error_message = "List at least one security group id (sg-...)."
  }
}

variable "associate_public_ip_address" {
  description = "true: the nodes get a public IPv4 address (the bastion), through a network interface declared by the template; false: private addresses only."
  type        = bool
  default     = false
}

variable "user_data" {
  description = "cloud-init user data, plain text (the template ships it gzip-compressed and base64-encoded); at most 16384 bytes once compressed, checked by a precondition."
  type        = string
}

variable "root_volume_size" {
  description = "Size of the root volume, in GiB: at least the AMI's snapshot (8 GiB for Canonical's Ubuntu images), at most 16384 (gp3, https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html)."
  type        = number

  validation {
    condition     = var.root_volume_size >= 8 && var.root_volume_size <= 16384 && floor(var.root_volume_size) == var.root_volume_size
    error_message = "The root_volume_size must be a whole number of GiB, 8-16384."
  }
}
