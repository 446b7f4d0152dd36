output "role_names" {
  description = "IAM role names by node role: masters, workers, bastion."
  value       = { for k, r in aws_iam_role.this : k => r.name }
}

output "role_arns" {
  description = "IAM role ARNs by node role: masters, workers, bastion."
  value       = { for k, r in aws_iam_role.this : k => r.arn }
}

output "instance_profile_names" {
  description = "Instance profile names by node role (used by the launch templates)."
  value       = { for k, p in aws_iam_instance_profile.this : k => p.name }
}

output "layers" {
  description = "The secrets layers each node role may read: { masters = [\"common\", \"secure\"], ... }."
  value       = { for k, r in local.roles : k => r.layers }
}

output "component_policies" {
  description = "The policy documents (JSON) of the cluster components that call AWS with a node's role, by node role: masters (cloud-controller-manager, EBS CSI controller), workers (ECR pulls). The bastion has none."
  value       = local.component_policies
}
