output "private_zone_id" {
  description = "ID of the private hosted zone."
  value       = aws_route53_zone.private.zone_id
}

output "public_zone_id" {
  description = "ID of the public hosted zone, or null when it is not managed here."
  value       = one(aws_route53_zone.public[*].zone_id)
}

output "public_name_servers" {
  description = "Name servers of the public zone to delegate to (empty when it is not managed here)."
  value       = flatten(aws_route53_zone.public[*].name_servers)
}
