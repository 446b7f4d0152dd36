variable "vpc_id" {
  description = "VPC the private zone is associated with."
  type        = string
}

variable "private_zone" {
  description = "Name of the private hosted zone, e.g. play.internal."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.private_zone))
    error_message = "The private_zone must be a lower-case DNS name."
  }
}

variable "etcd_records" {
  description = "A records in the private zone: fully qualified name => IPv4 address (the etcd members)."
  type        = map(string)
}

variable "kubeapi_internal_name" {
  description = "Fully qualified name, inside the private zone, aliased to the internal API load balancer."
  type        = string
}

variable "internal_lb" {
  description = "The internal API load balancer: { dns_name, zone_id }."
  type = object({
    dns_name = string
    zone_id  = string
  })
}

variable "manage_public_zone" {
  description = "Create the public hosted zone and the public API alias record."
  type        = bool
  default     = false
}

variable "public_zone" {
  description = "Name of the public hosted zone, e.g. play.example.com (used when manage_public_zone)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.public_zone))
    error_message = "The public_zone must be a lower-case DNS name."
  }
}

variable "kubeapi_public_name" {
  description = "Fully qualified name, inside the public zone, aliased to the public API load balancer (when manage_public_zone)."
  type        = string
}

variable "public_lb" {
  description = "The public API load balancer: { dns_name, zone_id }."
  type = object({
    dns_name = string
    zone_id  = string
  })
}
