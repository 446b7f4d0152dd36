# Staged rollouts (src/secrets/rollout.ts, DESIGN.md §8): a master's agent reads its layer's
# rollout record `rollout/<layer>` (envelope-encrypted under the layer's data key, which the
# role already decrypts) and, when it is not yet allowed to take the target, a previous
# version of `index/<layer>` (s3:GetObjectVersion on index/ is in the layers policy). Only
# operators write the record.

data "aws_iam_policy_document" "rollout" {
  statement {
    sid       = "ReadRolloutRecord"
    actions   = ["s3:GetObject"]
    resources = ["${local.bucket_arn}/rollout/secure"]
  }

  statement {
    sid       = "RolloutSseKmsViaS3"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${var.region}.${data.aws_partition.current.dns_suffix}"]
    }

    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:aws:s3:arn"
      values   = ["${local.bucket_arn}/rollout/secure"]
    }
  }
}

resource "aws_iam_role_policy" "rollout" {
  name   = "rollout"
  role   = aws_iam_role.this["masters"].id
  policy = data.aws_iam_policy_document.rollout.json
}
