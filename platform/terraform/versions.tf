terraform {
  # 1.6: the S3 backend's current settings (use_path_style, endpoints). The backend's
  # use_lockfile needs terraform or tofu >= 1.10: the driver refuses older binaries.
  required_version = ">= 1.6"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }
}
