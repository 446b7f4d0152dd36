# cloud-init user data per node role, rendered from templates/ (STYLE.md §13). Shared parts
# (runtime install, agent download, units) are rendered once and embedded in each role's
# cloud-config. Every value reaching a script was validated by variables.tf to a narrow
# character set, so none can inject shell or YAML.

locals {
  roles = {
    masters = { layers = ["common", "secure"], kubernetes = true, master = true, template = "master.yaml.tftpl" }
    workers = { layers = ["common", "compute"], kubernetes = true, master = false, template = "worker.yaml.tftpl" }
    bastion = { layers = ["common"], kubernetes = false, master = false, template = "bastion.yaml.tftpl" }
  }

  # v1.34.2 -> repository v1.34, package version 1.34.2
  kubernetes_minor   = regex("^v[0-9]+\\.[0-9]+", var.kubernetes_version)
  kubernetes_package = trimprefix(var.kubernetes_version, "v")

  # kubelet's image credential provider for ECR, installed by kp-install on every Kubernetes
  # node, used by the workers' kubelets (kp-kubelet). Release binaries of kubernetes/cloud-provider-aws
  # (https://artifacts.k8s.io/binaries/cloud-provider-aws/<version>/linux/<arch>/ecr-credential-provider-linux-<arch>,
  # each published with a .sha256 beside it). v1.29.0 is the newest release whose checksums could
  # be taken from a published source without network access here: kops'
  # pkg/assets/assetdata/ecr.yaml (https://github.com/kubernetes/kops). It speaks the stable
  # credentialprovider.kubelet.k8s.io/v1 API, which kubelet v1.34 serves. To move to a
  # release matching the Kubernetes minor (v1.34.x), set version and both checksums from that
  # release's .sha256 files.
  ecr_credential_provider = {
    version      = "v1.29.0"
    sha256_amd64 = "0d97641c8977fe775cb18f9e6f40acd99ef2570543b55e5c13dec320dcaa8ee3"
    sha256_arm64 = "8313d0744b7e5cfaccb7aa1327c5260471eb9463bc769f87df6f45dee84b8c44"
    bin_dir      = "/usr/local/libexec/kubelet-credential-providers"
  }

  # Images the workers' kubelets pull with ECR credentials: the environment's own account
  # (the account of its KMS key), any region; modules/iam allows pulls from nowhere else.
  ecr_account_id = split(":", var.kms_key_arn)[4]

  # The cluster DNS Service IP: the tenth address of the service CIDR (kubeadm's convention,
  # as src/config/topology.ts clusterDnsIp()).
  cluster_dns_ip = cidrhost(var.service_cidr, 10)

  fetch_agent_sh = templatefile("${path.module}/templates/fetch-agent.sh.tftpl", {
    region           = var.region
    bucket           = var.agent_bucket
    agent_object_key = var.agent_object_key
    agent_sha256     = var.agent_sha256
  })

  manifest_sync_unit = templatefile("${path.module}/templates/manifest-sync@.service", {
    environment = var.environment
    bucket      = var.secrets_bucket
    region      = var.region
  })

  etcd_claim_sh = templatefile("${path.module}/templates/etcd-claim.sh.tftpl", {
    environment     = var.environment
    region          = var.region
    etcd_version    = var.etcd_version
    initial_cluster = join(",", [for m in var.etcd_members : "${m.name}=https://${m.ip}:2380"])
    members = [for m in var.etcd_members : {
      name        = m.name
      ip          = m.ip
      dns_name    = m.dns_name
      subnet_cidr = m.subnet_cidr
      prefix      = split("/", m.subnet_cidr)[1]
      gateway     = cidrhost(m.subnet_cidr, 1) # the VPC router: the subnet's first address
    }]
  })

  # The masters' etcd snapshot timer (src/backup/): write_files entries for master.yaml.tftpl.
  etcd_backup_files = templatefile("${path.module}/templates/etcd-backup.yaml.tftpl", merge(var.etcd_backup, {
    environment = var.environment
    bucket      = var.secrets_bucket
    region      = var.region
  }))

  user_data_documented = {
    for role, r in local.roles : role => templatefile("${path.module}/templates/${r.template}", {
      environment       = var.environment
      etcd_claim_sh     = local.etcd_claim_sh
      etcd_backup_files = local.etcd_backup_files
      kp_addons_sh      = templatefile("${path.module}/templates/kp-addons.sh.tftpl", {})
      common_files = templatefile("${path.module}/templates/common-files.yaml.tftpl", {
        environment        = var.environment
        region             = var.region
        role               = role
        layers             = r.layers
        bucket             = var.secrets_bucket
        kubernetes_version = var.kubernetes_version
        etcd_version       = var.etcd_version
        service_cidr       = var.service_cidr
        pod_cidr           = var.pod_cidr
        fetch_agent_sh     = local.fetch_agent_sh
        manifest_sync_unit = local.manifest_sync_unit
        install_sh = templatefile("${path.module}/templates/install-node.sh.tftpl", {
          kubernetes              = r.kubernetes
          kubernetes_minor        = local.kubernetes_minor
          kubernetes_package      = local.kubernetes_package
          ecr_credential_provider = local.ecr_credential_provider
        })
      })
      kubernetes_files = !r.kubernetes ? "" : templatefile("${path.module}/templates/kubernetes-files.yaml.tftpl", {
        master         = r.master
        ecr_account_id = local.ecr_account_id
        kubelet_sh = templatefile("${path.module}/templates/kubelet.sh.tftpl", {
          master                  = r.master
          credential_provider_dir = local.ecr_credential_provider.bin_dir
        })
        kubelet_config = templatefile("${path.module}/templates/kubelet-config.yaml.tftpl", {
          standalone = false, master = r.master, cluster_domain = var.cluster_domain, cluster_dns_ip = local.cluster_dns_ip
        })
        kubelet_standalone_config = templatefile("${path.module}/templates/kubelet-config.yaml.tftpl", {
          standalone = true, master = r.master, cluster_domain = var.cluster_domain, cluster_dns_ip = local.cluster_dns_ip
        })
      })
    })
  }

  # The templates are commented for their readers; full-line comments ("# ..." but not "#!" or
  # "#cloud-config") are dropped from what is shipped, to stay within EC2's 16 KiB.
  user_data = {
    for role, ud in local.user_data_documented : role => join("\n", [
      for line in split("\n", ud) : line if length(regexall("^\\s*#( |$)", line)) == 0
    ])
  }
}
