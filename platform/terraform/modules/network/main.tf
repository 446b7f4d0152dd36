# The VPC and its four subnet layers, as in the original tool: private `secure` (masters,
# etcd) and `compute` (workers) subnets whose default route is the zone's NAT gateway; public
# `elb` (load balancers) and `mgmt` (bastion, NAT gateways) subnets routed to the internet
# gateway. One subnet of each layer per availability zone.

locals {
  layers         = ["secure", "compute", "elb", "mgmt"]
  public_layers  = ["elb", "mgmt"]
  private_layers = ["secure", "compute"]

  # How the AWS cloud-controller-manager picks the subnets of a Service of type LoadBalancer
  # (https://cloud-provider-aws.sigs.k8s.io/service_controller/,
  # https://docs.aws.amazon.com/eks/latest/userguide/network-load-balancing.html): subnets tagged
  # kubernetes.io/cluster/<cluster> are the cluster's, kubernetes.io/role/elb=1 marks those for
  # internet-facing load balancers (the public elb layer), kubernetes.io/role/internal-elb=1
  # those for internal ones (the workers' compute layer). The secure and mgmt layers carry no
  # such tag, so no Service ever lands a load balancer there.
  cluster_tag = "kubernetes.io/cluster/${var.environment}"
  layer_kubernetes_tags = {
    secure  = {}
    compute = { (local.cluster_tag) = "owned", "kubernetes.io/role/internal-elb" = "1" }
    elb     = { (local.cluster_tag) = "owned", "kubernetes.io/role/elb" = "1" }
    mgmt    = {}
  }

  # "<layer>/<zone>" => { layer, zone, cidr }. A layer with a subnet too few is caught by the
  # VPC's precondition (with a clear message) rather than by an index error here.
  subnets = merge([
    for layer in local.layers : {
      for i, zone in var.availability_zones : "${layer}/${zone}" => {
        layer = layer
        zone  = zone
        cidr  = var.subnets[layer][i]
      } if i < length(var.subnets[layer])
    }
  ]...)
}

resource "aws_vpc" "this" {
  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.environment }

  lifecycle {
    precondition {
      condition     = alltrue([for layer in local.layers : length(var.subnets[layer]) == length(var.availability_zones)])
      error_message = "Each subnet layer (secure, compute, elb, mgmt) must list exactly one subnet per availability zone."
    }
  }
}

resource "aws_subnet" "this" {
  for_each = local.subnets

  vpc_id            = aws_vpc.this.id
  cidr_block        = each.value.cidr
  availability_zone = each.value.zone

  # Public addresses are requested explicitly by the launch templates that need one (bastion).
  map_public_ip_on_launch = false

  tags = merge(
    {
      Name  = "${var.environment}-${each.value.layer}-${each.value.zone}"
      Layer = each.value.layer
    },
    local.layer_kubernetes_tags[each.value.layer],
  )
}

resource "aws_internet_gateway" "this" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = var.environment }
}

# One NAT gateway per zone (in that zone's mgmt subnet), so losing a zone does not cut the
# others off from the internet.
resource "aws_eip" "nat" {
  for_each = toset(var.availability_zones)

  domain = "vpc"
  tags   = { Name = "${var.environment}-nat-${each.key}" }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_nat_gateway" "this" {
  for_each = toset(var.availability_zones)

  allocation_id = aws_eip.nat[each.key].id
  subnet_id     = aws_subnet.this["mgmt/${each.key}"].id
  tags          = { Name = "${var.environment}-nat-${each.key}" }
}

resource "aws_route_table" "public" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.environment}-public" }
}

resource "aws_route" "public_internet" {
  route_table_id         = aws_route_table.public.id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this.id
}

resource "aws_route_table" "private" {
  for_each = toset(var.availability_zones)

  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.environment}-private-${each.key}" }
}

resource "aws_route" "private_nat" {
  for_each = toset(var.availability_zones)

  route_table_id         = aws_route_table.private[each.key].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[each.key].id
}

resource "aws_route_table_association" "this" {
  for_each = local.subnets

  subnet_id      = aws_subnet.this[each.key].id
  route_table_id = contains(local.public_layers, each.value.layer) ? aws_route_table.public.id : aws_route_table.private[each.value.zone].id
}
