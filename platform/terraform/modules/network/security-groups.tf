# Security groups of the layers and of the two API load balancers, with every rule as its own
# resource (aws_vpc_security_group_{ingress,egress}_rule) so that groups can reference each
# other without a cycle.

locals {
  groups = {
    bastion      = "bastion: SSH from ssh_access_list"
    masters      = "masters: Kubernetes API, etcd peers, kubelet"
    workers      = "workers: kubelet, NodePorts, pod network"
    api_public   = "public Kubernetes API load balancer: 443 from kubeapi_access_list"
    api_internal = "internal Kubernetes API load balancer: 443 from the VPC"
  }

  # What each group is attached to, as its Attachment tag: the policy rule ct-ec2-pr-4 allows
  # world-open ingress only on load balancers' groups, and reads it from the plan.
  load_balancer_groups = ["api_public", "api_internal"]

  # The pod network is flannel with its VXLAN backend (platform/manifests/secure/addons/flannel):
  # UDP 8472, the Linux kernel's VXLAN port, among all nodes
  # (https://github.com/flannel-io/flannel/blob/master/Documentation/backends.md#vxlan).
  # Masters accept only that from the nodes; workers additionally accept all traffic from
  # every node (pods on workers serve webhooks, metrics and services to the masters). No port
  # of another pod network (Calico BGP/Typha/WireGuard, Cilium health/Geneve) is opened: the
  # policy rule kp-pod-network-ports refuses them while flannel is the pod network.
  pod_network = [
    { name = "vxlan-linux", protocol = "udp", from = 8472, to = 8472 },
  ]

  # One entry per ingress rule: group, protocol ("-1" = all), ports, and exactly one of
  # cidr / source (a group key above).
  ingress = merge(
    { for c in var.ssh_access_list : "bastion-ssh-${c}" => {
      group       = "bastion", protocol = "tcp", from = 22, to = 22, cidr = c, source = null
      description = "SSH from the SSH access list"
    } },
    { for c in var.kubeapi_access_list : "api_public-https-${c}" => {
      group       = "api_public", protocol = "tcp", from = 443, to = 443, cidr = c, source = null
      description = "Kubernetes API from the API access list"
    } },
    {
      "api_internal-https-vpc" = {
        group       = "api_internal", protocol = "tcp", from = 443, to = 443, cidr = var.vpc_cidr, source = null
        description = "Kubernetes API from inside the VPC"
      }
      "masters-apiserver-api_public" = {
        group       = "masters", protocol = "tcp", from = 6443, to = 6443, cidr = null, source = "api_public"
        description = "kube-apiserver from the public API load balancer (traffic and health checks)"
      }
      "masters-apiserver-api_internal" = {
        group       = "masters", protocol = "tcp", from = 6443, to = 6443, cidr = null, source = "api_internal"
        description = "kube-apiserver from the internal API load balancer (traffic and health checks)"
      }
      "masters-apiserver-vpc" = {
        group       = "masters", protocol = "tcp", from = 6443, to = 6443, cidr = var.vpc_cidr, source = null
        description = "kube-apiserver from inside the VPC"
      }
      "masters-etcd-masters" = {
        group       = "masters", protocol = "tcp", from = 2379, to = 2380, cidr = null, source = "masters"
        description = "etcd client and peer traffic between masters"
      }
      "masters-etcd-client-bastion" = {
        group       = "masters", protocol = "tcp", from = 2379, to = 2379, cidr = null, source = "bastion"
        description = "etcd client port from the bastion: the operator's snapshot tunnel (--etcd-via-bastion); client certificates required"
      }
      "masters-ssh-bastion" = {
        group       = "masters", protocol = "tcp", from = 22, to = 22, cidr = null, source = "bastion"
        description = "SSH from the bastion"
      }
      "masters-kubelet-masters" = {
        group       = "masters", protocol = "tcp", from = 10250, to = 10250, cidr = null, source = "masters"
        description = "kubelet API from the masters (kube-apiserver)"
      }
      "masters-kubelet-workers" = {
        group       = "masters", protocol = "tcp", from = 10250, to = 10250, cidr = null, source = "workers"
        description = "kubelet API from the workers (metrics scraping)"
      }
      "workers-ssh-bastion" = {
        group       = "workers", protocol = "tcp", from = 22, to = 22, cidr = null, source = "bastion"
        description = "SSH from the bastion"
      }
      "workers-kubelet-masters" = {
        group       = "workers", protocol = "tcp", from = 10250, to = 10250, cidr = null, source = "masters"
        description = "kubelet API from the masters (kube-apiserver)"
      }
      "workers-all-workers" = {
        group       = "workers", protocol = "-1", from = null, to = null, cidr = null, source = "workers"
        description = "Pod network: all traffic between workers"
      }
      "workers-all-masters" = {
        group       = "workers", protocol = "-1", from = null, to = null, cidr = null, source = "masters"
        description = "Pod network: all traffic from the masters"
      }
    },
    { for pair in setproduct(["tcp", "udp"], var.subnets.elb) : "workers-nodeports-${pair[0]}-${pair[1]}" => {
      group       = "workers", protocol = pair[0], from = 30000, to = 32767, cidr = pair[1], source = null
      description = "NodePort services from the load balancer subnets"
    } },
    { for pair in setproduct(local.pod_network, ["masters", "workers"]) : "masters-${pair[0].name}-${pair[1]}" => {
      group       = "masters", protocol = pair[0].protocol, from = pair[0].from, to = pair[0].to, cidr = null, source = pair[1]
      description = "Pod network (${pair[0].name}) from the ${pair[1]}"
    } },
  )

  # Nodes and the bastion reach the internet through the NAT gateways / internet gateway;
  # the load balancers only talk to the masters' kube-apiserver.
  egress = {
    bastion = { protocol = "-1", from = null, to = null, cidr = "0.0.0.0/0", target = null, description = "All outbound traffic" }
    masters = { protocol = "-1", from = null, to = null, cidr = "0.0.0.0/0", target = null, description = "All outbound traffic" }
    workers = { protocol = "-1", from = null, to = null, cidr = "0.0.0.0/0", target = null, description = "All outbound traffic" }
    api_public = {
      protocol = "tcp", from = 6443, to = 6443, cidr = null, target = "masters", description = "kube-apiserver on the masters"
    }
    api_internal = {
      protocol = "tcp", from = 6443, to = 6443, cidr = null, target = "masters", description = "kube-apiserver on the masters"
    }
  }
}

resource "aws_security_group" "this" {
  for_each = local.groups

  name        = "${var.environment}-${replace(each.key, "_", "-")}"
  description = each.value
  vpc_id      = aws_vpc.this.id
  # The nodes' groups carry kubernetes.io/cluster/<environment>: the cloud-controller-manager
  # opens a node's one tagged group to the load balancers it creates for Services
  # (https://cloud-provider-aws.sigs.k8s.io/prerequisites/); the API load balancers' groups are
  # not the cluster's to change.
  tags = merge(
    {
      Name       = "${var.environment}-${replace(each.key, "_", "-")}"
      Attachment = contains(local.load_balancer_groups, each.key) ? "load-balancer" : "instances"
    },
    contains(["masters", "workers"], each.key) ? { (local.cluster_tag) = "owned" } : {},
  )
}

resource "aws_vpc_security_group_ingress_rule" "this" {
  for_each = local.ingress

  security_group_id            = aws_security_group.this[each.value.group].id
  description                  = each.value.description
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.from
  to_port                      = each.value.to
  cidr_ipv4                    = each.value.cidr
  referenced_security_group_id = each.value.source == null ? null : aws_security_group.this[each.value.source].id
  # SecurityGroup: the group's name, known at plan time (its id is not before the first apply),
  # so the policy rules can tell which group a world-open rule opens.
  tags = { Name = "${var.environment}-${each.key}", SecurityGroup = aws_security_group.this[each.value.group].name }

  # The local AWS (moto 5.2) reads the description of a rule that references a security
  # group back empty: a perpetual diff. The Name tag carries the same information.
  lifecycle {
    ignore_changes = [description]
  }
}

resource "aws_vpc_security_group_egress_rule" "this" {
  for_each = local.egress

  security_group_id            = aws_security_group.this[each.key].id
  description                  = each.value.description
  ip_protocol                  = each.value.protocol
  from_port                    = each.value.from
  to_port                      = each.value.to
  cidr_ipv4                    = each.value.cidr
  referenced_security_group_id = each.value.target == null ? null : aws_security_group.this[each.value.target].id
  tags                         = { Name = "${var.environment}-${each.key}-egress" }

  # The local AWS (moto 5.2) reads the description of a rule that references a security
  # group back empty: a perpetual diff. The Name tag carries the same information.
  lifecycle {
    ignore_changes = [description]
  }
}

# A warning on every plan (a check block never blocks): SSH open to the whole internet is the
# playground's deliberate default; anywhere else the policy rule cis-aws-6.3 refuses it.
check "ssh_not_world_open" {
  assert {
    condition     = !contains(var.ssh_access_list, "0.0.0.0/0")
    error_message = "ssh_access_list contains 0.0.0.0/0: the bastion's SSH port is open to the whole internet (CIS AWS Foundations 6.3)."
  }
}
