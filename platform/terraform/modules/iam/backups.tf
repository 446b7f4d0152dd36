# The masters' etcd snapshots (src/backup/, DESIGN.md §8): one master per slot writes
# backups/etcd-lease/<slot> (conditional write), then backups/etcd/<time>-<member>.db sealed
# under a data key with the encryption context {environment, layer = "backups"}, reads it back
# to verify it, and deletes expired snapshots (every version). Workers and the bastion get
# none of this: the backups layer holds the whole cluster's data.

data "aws_iam_policy_document" "backups" {
  statement {
    sid     = "EtcdBackupObjects"
    actions = ["s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject", "s3:DeleteObjectVersion"]
    resources = [
      "${local.bucket_arn}/backups/etcd/*",
      "${local.bucket_arn}/backups/etcd-lease/*",
    ]
  }

  statement {
    sid       = "ListEtcdBackups"
    actions   = ["s3:ListBucket", "s3:ListBucketVersions"]
    resources = [local.bucket_arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["backups/etcd/*", "backups/etcd/", "backups/etcd-lease/*", "backups/etcd-lease/"]
    }
  }

  statement {
    sid       = "BackupDataKeys"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:environment"
      values   = [var.environment]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:layer"
      values   = ["backups"]
    }
  }

  statement {
    sid       = "BackupSseKmsViaS3"
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
      values   = ["${local.bucket_arn}/backups/etcd/*", "${local.bucket_arn}/backups/etcd-lease/*"]
    }
  }
}

resource "aws_iam_role_policy" "backups" {
  name   = "etcd-backups"
  role   = aws_iam_role.this["masters"].id
  policy = data.aws_iam_policy_document.backups.json
}
