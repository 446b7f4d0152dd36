terraform {
  # 1.10: the S3 backend's native state locking (use_lockfile); the driver refuses older
  # binaries too, and README and .ci/check-tools say the same.
  required_version = ">= 1.10"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
