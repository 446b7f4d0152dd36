# A network load balancer for the Kubernetes API: TCP passthrough (TLS is end to end between
# clients and kube-apiserver) from the listener port to kube-apiserver's port on the masters.
# The target group is attached to the masters' ASGs by the masters module.

resource "aws_lb" "this" {
  name                             = var.name
  load_balancer_type               = "network"
  internal                         = var.internal
  subnets                          = var.subnet_ids
  security_groups                  = [var.security_group_id]
  enable_cross_zone_load_balancing = true
}

resource "aws_lb_target_group" "this" {
  name                 = var.name
  port                 = var.target_port
  protocol             = "TCP"
  target_type          = "instance"
  vpc_id               = var.vpc_id
  deregistration_delay = 30

  # Internal: client IP preservation off. With instance targets and preservation on, a
  # master that connects through the internal load balancer (kube-proxy's kubeconfig does)
  # times out whenever the load balancer picks that same master ("loopback" / hairpin:
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-troubleshooting.html).
  # The API server then sees the load balancer's private addresses as clients; the masters'
  # security group already admits 6443 from the load balancer's group. Internet-facing: the
  # AWS default (preserved), so audit logs show operators' addresses.
  preserve_client_ip = var.internal ? "false" : null

  # A TCP check: kube-apiserver's /readyz may answer 401 when anonymous requests are
  # disabled, and NLB HTTP checks accept only 200-399.
  # https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-health-checks.html
  health_check {
    protocol            = "TCP"
    port                = "traffic-port"
    interval            = 10
    healthy_threshold   = 3
    unhealthy_threshold = 3
  }
}

resource "aws_lb_listener" "this" {
  load_balancer_arn = aws_lb.this.arn
  port              = var.listener_port
  protocol          = "TCP"

  default_action {
    type             = "forward"
    target_group_arn = aws_lb_target_group.this.arn
  }
}
