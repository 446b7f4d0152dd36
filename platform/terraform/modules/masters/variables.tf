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

variable "launch_template" {
  description = "The masters' launch template (an instance of modules/launch-template): { id, latest_version }; every member's ASG launches its latest version."
  type = object({
    id             = string
    latest_version = number
  })
}

variable "kms_key_arn" {
  description = "KMS key encrypting the etcd volumes: the environment's customer-managed key (never the AWS-managed aws/ebs key, policy rule kp-etcd-volume-kms)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "kms_key_arn must be the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<id>), not an alias."
  }
}

variable "target_group_arns" {
  description = "Load balancer target groups the masters register in (the API load balancers)."
  type        = list(string)
  default     = []
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
