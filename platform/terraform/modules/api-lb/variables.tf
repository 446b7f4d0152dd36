variable "name" {
  description = "Name of the load balancer and its target group (at most 32 characters), e.g. <environment>-api."
  type        = string

  validation {
    condition     = can(regex("^[a-zA-Z0-9][a-zA-Z0-9-]{0,30}[a-zA-Z0-9]$", var.name))
    error_message = "The name must be 2-32 letters, digits or '-', not starting or ending with '-' (an ELB name)."
  }
}

variable "internal" {
  description = "true: an internal load balancer (private addresses, for clients inside the VPC); false: internet-facing."
  type        = bool
}

variable "vpc_id" {
  description = "VPC of the target group."
  type        = string
}

variable "subnet_ids" {
  description = "Subnets of the load balancer, one per availability zone (the elb subnets)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) > 0
    error_message = "At least one subnet is needed."
  }
}

variable "security_group_id" {
  description = "Security group of the load balancer (who may connect on the listener port)."
  type        = string
}

variable "listener_port" {
  description = "TCP port clients connect to."
  type        = number
  default     = 443

  validation {
    condition     = var.listener_port >= 1 && var.listener_port <= 65535
    error_message = "The listener_port must be a TCP port."
  }
}

variable "target_port" {
  description = "TCP port of kube-apiserver on the masters (--secure-port)."
  type        = number
  default     = 6443

  validation {
    condition     = var.target_port >= 1 && var.target_port <= 65535
    error_message = "The target_port must be a TCP port."
  }
}
