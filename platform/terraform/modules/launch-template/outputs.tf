output "id" {
  description = "ID of the launch template (lt-...), for an ASG's launch_template block."
  value       = aws_launch_template.this.id
}

output "latest_version" {
  description = "Latest version number of the launch template; an ASG that names it launches the current settings (every change makes a new version)."
  value       = aws_launch_template.this.latest_version
}

output "user_data_size" {
  description = "Size of the user data EC2 receives, in bytes: gzip-compressed, before base64 encoding (EC2 allows 16384; the template refuses more)."
  value       = local.user_data_size
}
