# Root inputs: the contract with the toolkit, which writes them as a -var-file JSON from the
# validated environment file (src/terraform/vars.ts, tfVars()). Every string is validated
# again here to a narrow character set: values reach cloud-init scripts and IAM policies.

variable "environment" {
  description = "Environment name: prefixes resource names and is the Environment tag (2-24 lower-case letters, digits, '-')."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.environment))
    error_message = "The environment must be 2-24 lower-case letters, digits or '-', starting with a letter."
  }
}

variable "region" {
  description = "AWS region of the environment, e.g. eu-west-1."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "The region must be an AWS region such as eu-west-1."
  }
}

variable "availability_zones" {
  description = "Availability zones of the environment; every subnet layer has one subnet per zone, in this order."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) > 0 && alltrue([for z in var.availability_zones : can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9][a-z]$", z))])
    error_message = "List at least one availability zone, each such as eu-west-1a."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC, e.g. 10.80.0.0/16."
  type        = string

  validation {
    condition     = can(cidrsubnet(var.vpc_cidr, 0, 0)) && try(cidrsubnet(var.vpc_cidr, 0, 0) == var.vpc_cidr, false)
    error_message = "The vpc_cidr must be an IPv4 CIDR with no host bits set, e.g. 10.80.0.0/16."
  }
}

variable "secure_subnets" {
  description = "CIDRs of the private secure subnets (masters and etcd), one per availability zone."
  type        = list(string)

  validation {
    condition     = length(var.secure_subnets) > 0 && alltrue([for c in var.secure_subnets : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Each secure subnet must be an IPv4 CIDR with no host bits set."
  }
}

variable "compute_subnets" {
  description = "CIDRs of the private compute subnets (workers), one per availability zone."
  type        = list(string)

  validation {
    condition     = length(var.compute_subnets) > 0 && alltrue([for c in var.compute_subnets : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Each compute subnet must be an IPv4 CIDR with no host bits set."
  }
}

variable "elb_subnets" {
  description = "CIDRs of the public elb subnets (load balancers), one per availability zone."
  type        = list(string)

  validation {
    condition     = length(var.elb_subnets) > 0 && alltrue([for c in var.elb_subnets : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Each elb subnet must be an IPv4 CIDR with no host bits set."
  }
}

variable "mgmt_subnets" {
  description = "CIDRs of the public mgmt subnets (bastion, NAT gateways), one per availability zone."
  type        = list(string)

  validation {
    condition     = length(var.mgmt_subnets) > 0 && alltrue([for c in var.mgmt_subnets : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Each mgmt subnet must be an IPv4 CIDR with no host bits set."
  }
}

variable "ssh_access_list" {
  description = "CIDRs allowed to reach the bastion on port 22."
  type        = list(string)

  validation {
    condition     = length(var.ssh_access_list) > 0 && alltrue([for c in var.ssh_access_list : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Each ssh_access_list entry must be an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24."
  }
}

variable "kubeapi_access_list" {
  description = "CIDRs allowed to reach the public Kubernetes API load balancer on port 443."
  type        = list(string)

  validation {
    condition     = length(var.kubeapi_access_list) > 0 && alltrue([for c in var.kubeapi_access_list : try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "Each kubeapi_access_list entry must be an IPv4 CIDR with no host bits set, e.g. 203.0.113.0/24."
  }
}

variable "public_dns_zone" {
  description = "Public DNS zone of the environment, e.g. play.example.com (no trailing dot)."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.public_dns_zone))
    error_message = "The public_dns_zone must be a lower-case DNS name such as example.com."
  }
}

variable "private_dns_zone" {
  description = "Private DNS zone (Route53 private hosted zone in the VPC), e.g. play.internal."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.private_dns_zone))
    error_message = "The private_dns_zone must be a lower-case DNS name such as play.internal."
  }
}

variable "kubeapi_public_name" {
  description = "Public DNS name of the Kubernetes API, inside public_dns_zone, e.g. kube-play.play.example.com."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.kubeapi_public_name))
    error_message = "The kubeapi_public_name must be a lower-case DNS name."
  }
}

variable "kubeapi_internal_name" {
  description = "Internal DNS name of the Kubernetes API, inside private_dns_zone, e.g. kube.play.internal."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.kubeapi_internal_name))
    error_message = "The kubeapi_internal_name must be a lower-case DNS name."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes release installed on the nodes (kubelet, kubectl from pkgs.k8s.io), e.g. v1.34.2."
  type        = string

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+$", var.kubernetes_version))
    error_message = "The kubernetes_version must be a release such as v1.34.2."
  }
}

variable "etcd_version" {
  description = "etcd release run by the etcd static pod, e.g. v3.6.4 (recorded on the masters; the image is set by the manifests)."
  type        = string

  validation {
    condition     = can(regex("^v[0-9]+\\.[0-9]+\\.[0-9]+$", var.etcd_version))
    error_message = "The etcd_version must be a release such as v3.6.4."
  }
}

variable "service_cidr" {
  description = "Kubernetes service CIDR; its tenth address is the cluster DNS service IP given to kubelets."
  type        = string

  validation {
    condition     = try(cidrsubnet(var.service_cidr, 0, 0) == var.service_cidr, false)
    error_message = "The service_cidr must be an IPv4 CIDR with no host bits set, e.g. 10.32.0.0/16."
  }
}

variable "pod_cidr" {
  description = "Kubernetes pod CIDR (the pod network addon allocates from it)."
  type        = string

  validation {
    condition     = try(cidrsubnet(var.pod_cidr, 0, 0) == var.pod_cidr, false)
    error_message = "The pod_cidr must be an IPv4 CIDR with no host bits set, e.g. 10.200.0.0/16."
  }
}

variable "cluster_domain" {
  description = "Cluster DNS domain given to kubelets, e.g. cluster.local."
  type        = string

  validation {
    condition     = can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", var.cluster_domain))
    error_message = "The cluster_domain must be a lower-case DNS name such as cluster.local."
  }
}

variable "master_instance_type" {
  description = "EC2 instance type of the masters, e.g. t3.medium."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.master_instance_type))
    error_message = "The master_instance_type must be an EC2 instance type such as t3.medium."
  }
}

variable "worker_instance_type" {
  description = "EC2 instance type of the workers, e.g. t3.large."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.worker_instance_type))
    error_message = "The worker_instance_type must be an EC2 instance type such as t3.large."
  }
}

variable "bastion_instance_type" {
  description = "EC2 instance type of the bastion, e.g. t3.micro."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]*\\.[a-z0-9]+$", var.bastion_instance_type))
    error_message = "The bastion_instance_type must be an EC2 instance type such as t3.micro."
  }
}

variable "worker_count" {
  description = "Desired number of workers (the worker ASG's desired capacity)."
  type        = number

  validation {
    condition     = var.worker_count >= 0 && floor(var.worker_count) == var.worker_count
    error_message = "The worker_count must be a whole number >= 0."
  }
}

variable "worker_max" {
  description = "Upper bound of the worker ASG (must be >= worker_count)."
  type        = number

  validation {
    condition     = var.worker_max >= 0 && floor(var.worker_max) == var.worker_max
    error_message = "The worker_max must be a whole number >= 0."
  }
}

variable "etcd_members" {
  description = <<-EOT
    The etcd members, one master each (src/config/topology.ts etcdMembers()): name (etcd-<index>),
    index, availability_zone, subnet_cidr (the member's secure subnet), ip (the fixed address of
    its ENI inside subnet_cidr) and dns_name (its record in private_dns_zone). An odd count, 1-7.
  EOT
  type = list(object({
    name              = string
    index             = number
    availability_zone = string
    subnet_cidr       = string
    ip                = string
    dns_name          = string
  }))

  validation {
    condition     = contains([1, 3, 5, 7], length(var.etcd_members))
    error_message = "There must be 1, 3, 5 or 7 etcd members (etcd needs a majority)."
  }

  validation {
    condition = alltrue([for m in var.etcd_members : (
      can(regex("^[a-z][a-z0-9-]{0,30}[a-z0-9]$", m.name)) &&
      can(regex("^([0-9]{1,3}\\.){3}[0-9]{1,3}$", m.ip)) &&
      try(cidrsubnet("${m.ip}/${split("/", m.subnet_cidr)[1]}", 0, 0) == m.subnet_cidr, false) &&
      can(regex("^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", m.dns_name))
    )])
    error_message = "Each etcd member needs a DNS-label name, an ip inside its subnet_cidr and a lower-case dns_name."
  }

  validation {
    condition     = length(distinct([for m in var.etcd_members : m.name])) == length(var.etcd_members) && length(distinct([for m in var.etcd_members : m.ip])) == length(var.etcd_members)
    error_message = "Etcd member names and ips must be unique."
  }
}

variable "ami_id" {
  description = "AMI of every node (resolved by the toolkit: NODE_AMI or the newest Canonical Ubuntu 24.04 LTS). The templates assume Ubuntu (apt, snap, systemd)."
  type        = string

  validation {
    condition     = can(regex("^ami-[0-9a-f]{8,17}$", var.ami_id))
    error_message = "The ami_id must be an AMI id such as ami-0123456789abcdef0."
  }
}

variable "ssh_user" {
  description = "Login user of the node image, e.g. ubuntu (informational: the key pair is installed for the image's default user)."
  type        = string

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_-]{0,31}$", var.ssh_user))
    error_message = "The ssh_user must be a Unix user name."
  }
}

variable "ssh_public_key" {
  description = "OpenSSH public key installed on every node (an EC2 key pair named after the environment). Not a secret."
  type        = string

  validation {
    condition     = can(regex("^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+=*( [^\\n]*)?$", var.ssh_public_key))
    error_message = "The ssh_public_key must be one OpenSSH public key line (ssh-ed25519, ssh-rsa or ecdsa-sha2-nistp*)."
  }
}

variable "secrets_bucket" {
  description = "Name of the environment's secrets bucket (already created by the toolkit); nodes read their layers from it."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.secrets_bucket))
    error_message = "The secrets_bucket must be an S3 bucket name (3-63 lower-case letters, digits, '.', '-')."
  }
}

variable "kms_key_arn" {
  description = "ARN of the environment's KMS key (created by the toolkit): envelope encryption of the secrets, etcd volume encryption."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[A-Za-z0-9-]+$", var.kms_key_arn))
    error_message = "The kms_key_arn must be a KMS key ARN such as arn:aws:kms:eu-west-1:123456789012:key/<id>."
  }
}

variable "agent_bucket" {
  description = "Bucket holding the manifest-sync agent bundle under agent/ (the state bucket: the secrets bucket holds only ciphertext, and a node needs the agent before it can decrypt anything)."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.agent_bucket))
    error_message = "The agent_bucket must be an S3 bucket name."
  }
}

variable "agent_object_key" {
  description = "S3 key, in agent_bucket, of the manifest-sync agent bundle, e.g. agent/manifest-sync-<sha256>.mjs (nodes may read only agent/)."
  type        = string

  validation {
    condition     = can(regex("^agent/[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", var.agent_object_key))
    error_message = "The agent_object_key must be an S3 key under agent/, e.g. agent/manifest-sync-<sha256>.mjs."
  }
}

variable "agent_sha256" {
  description = "Hex SHA-256 of the agent bundle; cloud-init refuses to run an agent with another digest."
  type        = string

  validation {
    condition     = can(regex("^[0-9a-f]{64}$", var.agent_sha256))
    error_message = "The agent_sha256 must be 64 lower-case hex digits."
  }
}

variable "manage_public_zone" {
  description = "Create the public hosted zone public_dns_zone and the alias kubeapi_public_name -> public API load balancer. False: no public DNS is managed (the zone usually lives in another account)."
  type        = bool
  default     = false
}

variable "etcd_backup" {
  description = "The masters' etcd snapshots (src/backup/): minutes between snapshots (a divisor of 60) and the retention windows (etcd-manager's: all for 1 hour, hourly for 7 days, daily for 90)."
  type = object({
    interval_minutes = number
    keep_all_hours   = number
    hourly_days      = number
    daily_days       = number
  })
  default = { interval_minutes = 15, keep_all_hours = 1, hourly_days = 7, daily_days = 90 }

  validation {
    condition     = var.etcd_backup.interval_minutes >= 1 && var.etcd_backup.interval_minutes <= 60 && 60 % var.etcd_backup.interval_minutes == 0
    error_message = "etcd_backup.interval_minutes must divide 60 (1-6, 10, 12, 15, 20, 30 or 60)."
  }

  validation {
    condition = alltrue([for v in [var.etcd_backup.keep_all_hours, var.etcd_backup.hourly_days, var.etcd_backup.daily_days] : v >= 0 && floor(v) == v]) && (
      var.etcd_backup.keep_all_hours <= var.etcd_backup.hourly_days * 24 && var.etcd_backup.hourly_days <= var.etcd_backup.daily_days
    )
    error_message = "etcd_backup retention: whole numbers with keep_all_hours <= hourly_days * 24 and hourly_days <= daily_days."
  }
}
