output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "subnet_ids" {
  description = "Subnet IDs per layer (secure, compute, elb, mgmt), each list in availability-zone order."
  value = {
    for layer in local.layers : layer => [for zone in var.availability_zones : aws_subnet.this["${layer}/${zone}"].id]
  }
}

output "subnet_ids_by_zone" {
  description = "Subnet IDs per layer, keyed by availability zone: { secure = { \"eu-west-1a\" = \"subnet-...\" }, ... }."
  value = {
    for layer in local.layers : layer => { for zone in var.availability_zones : zone => aws_subnet.this["${layer}/${zone}"].id }
  }
}

output "nat_public_ips" {
  description = "Public addresses of the NAT gateways (the source address of the nodes' outbound traffic), by zone."
  value       = { for zone, eip in aws_eip.nat : zone => eip.public_ip }
}

output "security_group_ids" {
  description = "Security group IDs: bastion, masters, workers, api_public, api_internal."
  value       = { for key, sg in aws_security_group.this : key => sg.id }
}
