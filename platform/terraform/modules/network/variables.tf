variable "environment" {
  description = "Environment name, prefix of every Name tag."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.environment))
    error_message = "The environment must be 2-24 lower-case letters, digits or '-'."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  type        = string

  validation {
    condition     = try(cidrsubnet(var.vpc_cidr, 0, 0) == var.vpc_cidr, false)
    error_message = "The vpc_cidr must be an IPv4 CIDR with no host bits set."
  }
}

variable "availability_zones" {
  description = "Availability zones; subnet lists are indexed like this list."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) > 0
    error_message = "List at least one availability zone."
  }
}

variable "subnets" {
  description = "Subnet CIDRs per layer, one per availability zone: secure and compute are private (default route to the zone's NAT gateway), elb and mgmt public (default route to the internet gateway)."
  type = object({
    secure  = list(string)
    compute = list(string)
    elb     = list(string)
    mgmt    = list(string)
  })

  validation {
    condition     = alltrue([for c in flatten(values(var.subnets)) : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Every subnet must be an IPv4 CIDR with no host bits set."
  }
}

variable "ssh_access_list" {
  description = "CIDRs allowed to reach the bastion on port 22."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.ssh_access_list : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Each entry must be an IPv4 CIDR with no host bits set."
  }
}

variable "kubeapi_access_list" {
  description = "CIDRs allowed to reach the public API load balancer on port 443."
  type        = list(string)

  validation {
    condition     = alltrue([for c in var.kubeapi_access_list : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Each entry must be an IPv4 CIDR with no host bits set."
  }
}
