output "asg_name" {
  description = "Name of the pool's ASG."
  value       = aws_autoscaling_group.this.name
}

output "launch_template_id" {
  description = "ID of the pool's launch template."
  value       = aws_launch_template.this.id
}
