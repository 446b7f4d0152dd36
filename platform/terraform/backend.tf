# Partial configuration: the toolkit (src/terraform) passes bucket, key, region, encrypt,
# use_lockfile and, for a custom endpoint, use_path_style and endpoints.s3 at `init`, so no
# environment is hard-coded here (DESIGN.md §6).
terraform {
  backend "s3" {}
}
