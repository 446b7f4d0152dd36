# kube-platform: one environment (DESIGN.md §6). The toolkit writes the variables from the
# validated environment file; state lives in the environment's state bucket.

data "aws_ami" "node" {
  owners = ["self", "amazon", "aws-marketplace", "099720109477"] # 099720109477: Canonical

  filter {
    name   = "image-id"
    values = [var.ami_id]
  }
}

resource "aws_key_pair" "this" {
  key_name   = var.environment
  public_key = var.ssh_public_key
}

module "network" {
  source = "./modules/network"

  environment         = var.environment
  vpc_cidr            = var.vpc_cidr
  availability_zones  = var.availability_zones
  ssh_access_list     = var.ssh_access_list
  kubeapi_access_list = var.kubeapi_access_list
  subnets = {
    secure  = var.secure_subnets
    compute = var.compute_subnets
    elb     = var.elb_subnets
    mgmt    = var.mgmt_subnets
  }
}

module "iam" {
  source = "./modules/iam"

  environment    = var.environment
  region         = var.region
  secrets_bucket = var.secrets_bucket
  agent_bucket   = var.agent_bucket
  kms_key_arn    = var.kms_key_arn
}

# Two API load balancers: the internet-facing one for operators (kubeapi_access_list), and an
# internal one for everything inside the VPC (kubelets, pods, the bastion) so that in-cluster
# traffic neither leaves through the NAT gateways nor needs their addresses allow-listed.
module "api_lb_public" {
  source = "./modules/api-lb"

  name              = "${var.environment}-api"
  internal          = false
  vpc_id            = module.network.vpc_id
  subnet_ids        = module.network.subnet_ids.elb
  security_group_id = module.network.security_group_ids.api_public
}

module "api_lb_internal" {
  source = "./modules/api-lb"

  name              = "${var.environment}-api-int"
  internal          = true
  vpc_id            = module.network.vpc_id
  subnet_ids        = module.network.subnet_ids.elb
  security_group_id = module.network.security_group_ids.api_internal
}

# The launch template of each kind of node (modules/launch-template), keyed like the node roles
# of user-data.tf and the IAM roles: name (the template <environment>-<name>, the Name tag of
# the instances and root volumes), layer (their Layer tag), what (the template's description),
# root volume size in GiB. Only the bastion has a public address.
locals {
  launch_templates = {
    masters = { name = "secure", layer = "secure", what = "masters", instance_type = var.master_instance_type, root_volume_size = 30, public_ip = false }
    workers = { name = "compute", layer = "compute", what = "worker pool compute", instance_type = var.worker_instance_type, root_volume_size = 50, public_ip = false }
    bastion = { name = "bastion", layer = "bastion", what = "bastion", instance_type = var.bastion_instance_type, root_volume_size = 20, public_ip = true }
  }
}

module "launch_template" {
  source   = "./modules/launch-template"
  for_each = local.launch_templates

  environment                 = var.environment
  name                        = each.value.name
  layer                       = each.value.layer
  description                 = "kube-platform ${var.environment} ${each.value.what}"
  ami_id                      = var.ami_id
  root_device_name            = data.aws_ami.node.root_device_name
  instance_type               = each.value.instance_type
  key_name                    = aws_key_pair.this.key_name
  instance_profile_name       = module.iam.instance_profile_names[each.key]
  security_group_ids          = [module.network.security_group_ids[each.key]]
  associate_public_ip_address = each.value.public_ip
  user_data                   = local.user_data[each.key]
  root_volume_size            = each.value.root_volume_size
}

module "masters" {
  source = "./modules/masters"

  environment          = var.environment
  members              = var.etcd_members
  subnet_ids_by_zone   = module.network.subnet_ids_by_zone.secure
  subnet_cidrs_by_zone = zipmap(var.availability_zones, var.secure_subnets)
  security_group_id    = module.network.security_group_ids.masters
  launch_template      = module.launch_template["masters"]
  kms_key_arn          = var.kms_key_arn
  target_group_arns    = [module.api_lb_public.target_group_arn, module.api_lb_internal.target_group_arn]
}

module "workers" {
  source = "./modules/workers"

  environment     = var.environment
  name            = local.launch_templates.workers.name
  layer           = local.launch_templates.workers.layer
  subnet_ids      = module.network.subnet_ids.compute
  launch_template = module.launch_template["workers"]
  desired_count   = var.worker_count
  max_count       = var.worker_max

  kubernetes_cluster = var.environment
}

# The bastion is a pool of exactly one, with a public address, in the mgmt subnets: the only
# host reachable by SSH from outside (operators reach the private nodes by ProxyJump); the
# ASG replaces it, in another zone if one fails.
module "bastion" {
  source = "./modules/workers"

  environment     = var.environment
  name            = local.launch_templates.bastion.name
  layer           = local.launch_templates.bastion.layer
  subnet_ids      = module.network.subnet_ids.mgmt
  launch_template = module.launch_template["bastion"]
  min_count       = 1
  desired_count   = 1
  max_count       = 1
}

module "dns" {
  source = "./modules/dns"

  vpc_id                = module.network.vpc_id
  private_zone          = var.private_dns_zone
  etcd_records          = { for m in var.etcd_members : m.dns_name => m.ip }
  kubeapi_internal_name = var.kubeapi_internal_name
  internal_lb           = { dns_name = module.api_lb_internal.dns_name, zone_id = module.api_lb_internal.zone_id }
  manage_public_zone    = var.manage_public_zone
  public_zone           = var.public_dns_zone
  kubeapi_public_name   = var.kubeapi_public_name
  public_lb             = { dns_name = module.api_lb_public.dns_name, zone_id = module.api_lb_public.zone_id }
}
