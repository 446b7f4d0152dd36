# One IAM role and instance profile per node role. Each reads only the bucket prefixes of the
# layers it may see (DESIGN.md §4) and decrypts only data keys whose encryption context names
# this environment and one of those layers, so a worker cannot decrypt a master's secrets
# even if it obtained the ciphertext.
#
# Object layout read by nodes: <layer>/* (files), index/<layer> (the layer's index),
# and, in the agent bucket (the state bucket), agent/* (the manifest-sync bundle); written:
# status/<layer>/* (agent status reports).

locals {
  roles = {
    masters = { layers = ["common", "secure"], claims_etcd = true }
    workers = { layers = ["common", "compute"], claims_etcd = false }
    bastion = { layers = ["common"], claims_etcd = false }
  }

  bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${var.secrets_bucket}"
  agent_arn  = "arn:${data.aws_partition.current.partition}:s3:::${var.agent_bucket}/agent/*"
}

data "aws_partition" "current" {}

data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "Ec2AssumeRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.${data.aws_partition.current.dns_suffix}"]
    }
  }
}

data "aws_iam_policy_document" "this" {
  for_each = local.roles

  statement {
    sid     = "ReadLayers"
    actions = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = concat(
      [for l in each.value.layers : "${local.bucket_arn}/${l}/*"],
      [for l in each.value.layers : "${local.bucket_arn}/index/${l}"],
      [local.agent_arn],
    )
  }

  statement {
    sid       = "ListLayers"
    actions   = ["s3:ListBucket"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values = concat(
        [for l in each.value.layers : "${l}/*"],
        [for l in each.value.layers : "index/${l}"],
      )
    }
  }

  statement {
    sid       = "WriteStatus"
    actions   = ["s3:PutObject"]
    resources = [for l in each.value.layers : "${local.bucket_arn}/status/${l}/*"]
  }

  # Envelope encryption (DESIGN.md §4): data keys are bound to {environment, layer}.
  statement {
    sid       = "DecryptLayerDataKeys"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:environment"
      values   = [var.environment]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:layer"
      values   = each.value.layers
    }
  }

  # SSE-KMS on top: S3 calls KMS on the caller's behalf with the context aws:s3:arn = the
  # object (or the bucket, with S3 Bucket Keys). Readable/writable prefixes only.
  # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context
  statement {
    sid       = "SseKmsViaS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.${data.aws_partition.current.dns_suffix}"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values = concat(
        [local.bucket_arn, local.agent_arn],
        [for l in each.value.layers : "${local.bucket_arn}/${l}/*"],
        [for l in each.value.layers : "${local.bucket_arn}/index/${l}"],
        [for l in each.value.layers : "${local.bucket_arn}/status/${l}/*"],
      )
    }
  }

  # Masters claim their etcd member's ENI and EBS volume at boot (templates/etcd-claim.sh).
  dynamic "statement" {
    for_each = each.value.claims_etcd ? [1] : []
    content {
      sid       = "DescribeForEtcdClaim"
      actions   = ["ec2:DescribeInstances", "ec2:DescribeNetworkInterfaces", "ec2:DescribeVolumes"]
      resources = ["*"] # Describe* actions support no resource-level permissions.
    }
  }

  dynamic "statement" {
    for_each = each.value.claims_etcd ? [1] : []
    content {
      sid     = "AttachEtcdEniAndVolume"
      actions = ["ec2:AttachNetworkInterface", "ec2:AttachVolume"]
      resources = [
        "arn:${data.aws_partition.current.partition}:ec2:${var.region}:*:instance/*",
        "arn:${data.aws_partition.current.partition}:ec2:${var.region}:*:network-interface/*",
        "arn:${data.aws_partition.current.partition}:ec2:${var.region}:*:volume/*",
      ]

      # Both the instance and the ENI/volume must carry this environment's secure-layer tags.
      condition {
        test     = "StringEquals"
        variable = "ec2:ResourceTag/Environment"
        values   = [var.environment]
      }

      condition {
        test     = "StringEquals"
        variable = "ec2:ResourceTag/Layer"
        values   = ["secure"]
      }
    }
  }

  # Attaching a volume encrypted with a customer managed key makes EC2 create a grant for
  # itself on the caller's behalf. https://docs.aws.amazon.com/ebs/latest/userguide/ebs-encryption-requirements.html
  dynamic "statement" {
    for_each = each.value.claims_etcd ? [1] : []
    content {
      sid       = "EtcdVolumeKeyViaEc2"
      actions   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"]
      resources = [var.kms_key_arn]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["ec2.${var.region}.${data.aws_partition.current.dns_suffix}"]
      }
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name               = "${var.environment}-${each.key}"
  description        = "kube-platform ${var.environment} ${each.key}: reads layers ${join(", ", each.value.layers)}"
  assume_role_policy = data.aws_iam_policy_document.assume.json
}

resource "aws_iam_role_policy" "this" {
  for_each = local.roles

  name   = "layers"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.this[each.key].json
}

resource "aws_iam_instance_profile" "this" {
  for_each = local.roles

  name = "${var.environment}-${each.key}"
  role = aws_iam_role.this[each.key].name
}
