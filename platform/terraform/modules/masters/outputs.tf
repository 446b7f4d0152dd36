output "asg_names" {
  description = "Names of the masters' ASGs, in member order."
  value       = [for m in var.members : aws_autoscaling_group.this[m.name].name]
}

output "eni_ids" {
  description = "ENI ID of each etcd member, by member name."
  value       = { for name, eni in aws_network_interface.this : name => eni.id }
}

output "volume_ids" {
  description = "EBS volume ID of each etcd member, by member name."
  value       = { for name, v in aws_ebs_volume.this : name => v.id }
}
