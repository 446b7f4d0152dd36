output "asg_name" {
  description = "Name of the bastion's ASG."
  value       = aws_autoscaling_group.this.name
}

output "launch_template_id" {
  description = "ID of the bastion's launch template."
  value       = aws_launch_template.this.id
}
