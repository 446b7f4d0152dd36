variable "environment" {
  description = "Environment name: prefixes role names and is the required kms:EncryptionContext:environment."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.environment))
    error_message = "The environment must be 2-24 lower-case letters, digits or '-'."
  }
}

variable "region" {
  description = "AWS region of the environment (for the kms:ViaService conditions, e.g. s3.eu-west-1.amazonaws.com)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region such as eu-west-1."
  }
}

variable "agent_bucket" {
  description = "Bucket holding the manifest-sync agent bundle under agent/ (readable by every node)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.agent_bucket))
    error_message = "The agent_bucket must be an S3 bucket name."
  }
}

variable "secrets_bucket" {
  description = "Name of the secrets bucket the nodes read their layers from."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.secrets_bucket))
    error_message = "The secrets_bucket must be an S3 bucket name."
  }
}

variable "kms_key_arn" {
  description = "ARN of the environment's KMS key."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN."
  }
}
