output "vpc_id" {
  description = "ID of the environment's VPC."
  value       = module.network.vpc_id
}

output "subnet_ids" {
  description = "Subnet IDs per layer: { secure, compute, elb, mgmt }, each a list in availability-zone order."
  value       = module.network.subnet_ids
}

output "security_group_ids" {
  description = "Security group IDs: { bastion, masters, workers, api_public, api_internal }."
  value       = module.network.security_group_ids
}

output "nat_public_ips" {
  description = "Public addresses of the NAT gateways by zone (the nodes' outbound source addresses)."
  value       = module.network.nat_public_ips
}

output "role_names" {
  description = "IAM role names per node role: { masters, workers, bastion }."
  value       = module.iam.role_names
}

output "role_arns" {
  description = "IAM role ARNs per node role: { masters, workers, bastion }."
  value       = module.iam.role_arns
}

output "master_asg_names" {
  description = "Names of the masters' ASGs, one per etcd member, in member order."
  value       = module.masters.asg_names
}

output "etcd_eni_ids" {
  description = "ENI of each etcd member, by member name."
  value       = module.masters.eni_ids
}

output "etcd_volume_ids" {
  description = "EBS data volume of each etcd member, by member name."
  value       = module.masters.volume_ids
}

output "worker_asg_name" {
  description = "Name of the default worker pool's ASG."
  value       = module.workers.asg_name
}

output "bastion_asg_name" {
  description = "Name of the bastion's ASG."
  value       = module.bastion.asg_name
}

output "api_lb_dns_name" {
  description = "DNS name of the internet-facing API load balancer (TCP 443 -> kube-apiserver 6443)."
  value       = module.api_lb_public.dns_name
}

output "api_internal_lb_dns_name" {
  description = "DNS name of the internal API load balancer, target of kubeapi_internal_name."
  value       = module.api_lb_internal.dns_name
}

output "private_zone_id" {
  description = "ID of the private hosted zone."
  value       = module.dns.private_zone_id
}

output "public_name_servers" {
  description = "Name servers of the public zone when manage_public_zone (empty otherwise)."
  value       = module.dns.public_name_servers
}

output "ssh_user" {
  description = "Login user of the nodes."
  value       = var.ssh_user
}

output "user_data_sizes" {
  description = "Size in bytes of each node role's cloud-init user data as EC2 receives it, gzip-compressed (EC2 allows 16384)."
  value       = { for role, lt in module.launch_template : role => lt.user_data_size }
}
