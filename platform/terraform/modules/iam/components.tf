# What the cluster components that call AWS APIs with a node's role may do, each from its
# upstream project's published policy, narrowed where this platform does not use a feature
# (the reason is given at each omission). One policy per node role (aws_iam_role_policy
# "components"): the masters run the AWS cloud-controller-manager and the EBS CSI controller;
# the workers pull images from the environment's ECR (the kubelet's ecr-credential-provider).
# The EBS CSI node plugin needs no AWS permission: it reads its instance identity from the
# Kubernetes Node (providerID, topology labels), since pods cannot reach IMDS (hop limit 1,
# modules/launch-template). The bastion gets nothing here.
#
# test/fixtures/iam/upstream-policies.json holds the upstream action lists these are cut from;
# test/integration/terraform-workloads.test.ts checks the rendered policies against it.

locals {
  partition  = data.aws_partition.current.partition
  account_id = split(":", var.kms_key_arn)[4] # the environment's account: its KMS key's

  # AWS cloud-controller-manager (kubernetes/cloud-provider-aws), "Control Plane Policy" of
  # https://github.com/kubernetes/cloud-provider-aws/blob/master/docs/prerequisites.md
  # (https://cloud-provider-aws.sigs.k8s.io/prerequisites/), less:
  #   ec2:CreateRoute, ec2:DeleteRoute     the route controller is off (--configure-cloud-routes=false;
  #                                        flannel's VXLAN carries pod traffic)
  #   ec2:CreateVolume, ec2:AttachVolume, ec2:DetachVolume, ec2:DeleteVolume, ec2:ModifyVolume
  #                                        volumes are the EBS CSI controller's (its statements below);
  #                                        the CCM has no volume plugin
  # Upstream grants these on "*" (the service and node controllers act on load balancers and
  # security groups they create, whose ARNs are not known in advance).
  ccm_actions = [
    "autoscaling:DescribeAutoScalingGroups",
    "autoscaling:DescribeLaunchConfigurations",
    "autoscaling:DescribeTags",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:CreateSecurityGroup",
    "ec2:CreateTags",
    "ec2:DeleteSecurityGroup",
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstanceTopology",
    "ec2:DescribeInstances",
    "ec2:DescribeRegions",
    "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroups",
    "ec2:DescribeSubnets",
    "ec2:DescribeVolumes",
    "ec2:DescribeVpcs",
    "ec2:ModifyInstanceAttribute",
    "ec2:RevokeSecurityGroupIngress",
    "elasticloadbalancing:AddTags",
    "elasticloadbalancing:ApplySecurityGroupsToLoadBalancer",
    "elasticloadbalancing:AttachLoadBalancerToSubnets",
    "elasticloadbalancing:ConfigureHealthCheck",
    "elasticloadbalancing:CreateListener",
    "elasticloadbalancing:CreateLoadBalancer",
    "elasticloadbalancing:CreateLoadBalancerListeners",
    "elasticloadbalancing:CreateLoadBalancerPolicy",
    "elasticloadbalancing:CreateTargetGroup",
    "elasticloadbalancing:DeleteListener",
    "elasticloadbalancing:DeleteLoadBalancer",
    "elasticloadbalancing:DeleteLoadBalancerListeners",
    "elasticloadbalancing:DeleteTargetGroup",
    "elasticloadbalancing:DeregisterInstancesFromLoadBalancer",
    "elasticloadbalancing:DeregisterTargets",
    "elasticloadbalancing:DescribeListeners",
    "elasticloadbalancing:DescribeLoadBalancerAttributes",
    "elasticloadbalancing:DescribeLoadBalancerPolicies",
    "elasticloadbalancing:DescribeLoadBalancers",
    "elasticloadbalancing:DescribeTargetGroups",
    "elasticloadbalancing:DescribeTargetHealth",
    "elasticloadbalancing:DetachLoadBalancerFromSubnets",
    "elasticloadbalancing:ModifyListener",
    "elasticloadbalancing:ModifyLoadBalancerAttributes",
    "elasticloadbalancing:ModifyTargetGroup",
    "elasticloadbalancing:RegisterInstancesWithLoadBalancer",
    "elasticloadbalancing:RegisterTargets",
    "elasticloadbalancing:SetLoadBalancerPoliciesForBackendServer",
    "elasticloadbalancing:SetLoadBalancerPoliciesOfListener",
    "iam:CreateServiceLinkedRole",
    "kms:DescribeKey",
  ]

  # EBS CSI controller (kubernetes-sigs/aws-ebs-csi-driver), from
  # https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/example-iam-policy.json
  # with its conditions (volumes it creates carry ebs.csi.aws.com/cluster=true and CSIVolumeName),
  # resources narrowed to this region, less the snapshot and copy actions (ec2:CreateSnapshot,
  # ec2:DeleteSnapshot, ec2:DescribeSnapshots, ec2:EnableFastSnapshotRestores, ec2:CopyVolumes,
  # and CreateVolume on snapshot/*): no csi-snapshotter runs and no VolumeSnapshot CRDs are
  # installed, so the driver is never asked for a snapshot or a copy.
  ec2_arn = "arn:${local.partition}:ec2:${var.region}"
  ebs_csi_describe_actions = [
    "ec2:DescribeAvailabilityZones",
    "ec2:DescribeInstances",
    "ec2:DescribeTags",
    "ec2:DescribeVolumes",
    "ec2:DescribeVolumesModifications",
    "ec2:DescribeVolumeStatus",
  ]

  # Images from the environment's own ECR registries: what the kubelet's ecr-credential-provider
  # (https://github.com/kubernetes/cloud-provider-aws/blob/master/docs/credential_provider.md)
  # calls, ecr:GetAuthorizationToken (which supports no resource-level permission), and what a
  # pull with that token needs on the repository
  # (https://docs.aws.amazon.com/AmazonECR/latest/userguide/security_iam_id-based-policy-examples.html),
  # from the upstream "Node Policy" of prerequisites.md, less ec2:DescribeInstances and
  # ec2:DescribeRegions (for the in-tree kubelet cloud provider; an external kubelet calls no
  # EC2 API) and ecr:DescribeRepositories, ecr:ListImages, ecr:GetRepositoryPolicy (browsing,
  # not pulling).
  ecr_pull_actions = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
  ]
}

data "aws_iam_policy_document" "masters_components" {
  statement {
    sid       = "CloudControllerManager"
    actions   = local.ccm_actions
    resources = ["*"]
  }

  statement {
    sid       = "EbsCsiDescribe"
    actions   = local.ebs_csi_describe_actions
    resources = ["*"] # Describe* actions support no resource-level permissions.
  }

  statement {
    sid       = "EbsCsiModifyVolume"
    actions   = ["ec2:ModifyVolume"]
    resources = ["${local.ec2_arn}:*:volume/*"]
  }

  statement {
    sid       = "EbsCsiAttachDetach"
    actions   = ["ec2:AttachVolume", "ec2:DetachVolume"]
    resources = ["${local.ec2_arn}:*:volume/*", "${local.ec2_arn}:*:instance/*"]
  }

  statement {
    sid       = "EbsCsiTagOnCreate"
    actions   = ["ec2:CreateTags"]
    resources = ["${local.ec2_arn}:*:volume/*"]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateVolume"]
    }
  }

  statement {
    sid       = "EbsCsiDeleteTags"
    actions   = ["ec2:DeleteTags"]
    resources = ["${local.ec2_arn}:*:volume/*"]
  }

  statement {
    sid       = "EbsCsiCreateClusterVolume"
    actions   = ["ec2:CreateVolume"]
    resources = ["${local.ec2_arn}:*:volume/*"]

    condition {
      test     = "StringLike"
      variable = "aws:RequestTag/ebs.csi.aws.com/cluster"
      values   = ["true"]
    }
  }

  statement {
    sid       = "EbsCsiDeleteClusterVolume"
    actions   = ["ec2:DeleteVolume"]
    resources = ["${local.ec2_arn}:*:volume/*"]

    condition {
      test     = "StringLike"
      variable = "ec2:ResourceTag/ebs.csi.aws.com/cluster"
      values   = ["true"]
    }
  }

  # Volumes of the gp3 StorageClass are encrypted with the environment's key: EC2 uses it on
  # the caller's behalf, and only that (kms:ViaService), so these grant no way to decrypt a
  # secrets-bucket data key. https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html
  # and the KMS policy of https://github.com/kubernetes-sigs/aws-ebs-csi-driver/blob/master/docs/install.md
  # (ReEncrypt* and GenerateDataKey* spelt out: no wildcard actions).
  statement {
    sid       = "EbsCsiVolumeKeyGrants"
    actions   = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]
    resources = [var.kms_key_arn]

    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ec2.${var.region}.${data.aws_partition.current.dns_suffix}"]
    }
  }

  statement {
    sid = "EbsCsiVolumeKeyViaEc2"
    actions = [
      "kms:Decrypt",
      "kms:DescribeKey",
      "kms:Encrypt",
      "kms:GenerateDataKeyWithoutPlaintext",
      "kms:ReEncryptFrom",
      "kms:ReEncryptTo",
    ]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["ec2.${var.region}.${data.aws_partition.current.dns_suffix}"]
    }
  }
}

data "aws_iam_policy_document" "workers_components" {
  statement {
    sid       = "EcrAuthorizationToken"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"] # supports no resource-level permissions
  }

  statement {
    sid       = "EcrPullOwnAccount"
    actions   = local.ecr_pull_actions
    resources = ["arn:${local.partition}:ecr:*:${local.account_id}:repository/*"]
  }
}

locals {
  component_policies = {
    masters = data.aws_iam_policy_document.masters_components.json
    workers = data.aws_iam_policy_document.workers_components.json
  }
}

resource "aws_iam_role_policy" "components" {
  for_each = local.component_policies

  name   = "components"
  role   = aws_iam_role.this[each.key].id
  policy = each.value
}
