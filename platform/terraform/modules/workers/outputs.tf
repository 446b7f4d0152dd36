output "asg_name" {
  description = "Name of the pool's ASG, <environment>-<name>."
  value       = aws_autoscaling_group.this.name
}
