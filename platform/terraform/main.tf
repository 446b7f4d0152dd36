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

module "masters" {
  source = "./modules/masters"

  environment           = var.environment
  members               = var.etcd_members
  subnet_ids_by_zone    = module.network.subnet_ids_by_zone.secure
  subnet_cidrs_by_zone  = zipmap(var.availability_zones, var.secure_subnets)
  security_group_id     = module.network.security_group_ids.masters
  instance_profile_name = module.iam.instance_profile_names.masters
  ami_id                = var.ami_id
  root_device_name      = data.aws_ami.node.root_device_name
  instance_type         = var.master_instance_type
  key_name              = aws_key_pair.this.key_name
  user_data             = local.user_data.masters
  kms_key_arn           = var.kms_key_arn
  target_group_arns     = [module.api_lb_public.target_group_arn, module.api_lb_internal.target_group_arn]
}

module "workers" {
  source = "./modules/workers"

  environment           = var.environment
  name                  = "compute"
  subnet_ids            = module.network.subnet_ids.compute
  security_group_ids    = [module.network.security_group_ids.workers]
  instance_profile_name = module.iam.instance_profile_names.workers
  ami_id                = var.ami_id
  root_device_name      = data.aws_ami.node.root_device_name
  instance_type         = var.worker_instance_type
  key_name              = aws_key_pair.this.key_name
  user_data             = local.user_data.workers
  desired_count         = var.worker_count
  max_count             = var.worker_max
}

module "bastion" {
  source = "./modules/bastion"

  environment           = var.environment
  subnet_ids            = module.network.subnet_ids.mgmt
  security_group_id     = module.network.security_group_ids.bastion
  instance_profile_name = module.iam.instance_profile_names.bastion
  ami_id                = var.ami_id
  root_device_name      = data.aws_ami.node.root_device_name
  instance_type         = var.bastion_instance_type
  key_name              = aws_key_pair.this.key_name
  user_data             = local.user_data.bastion
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
