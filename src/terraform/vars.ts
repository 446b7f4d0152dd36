import type { EnvConfig } from '../config/load.js';
import { etcdMembers } from '../config/topology.js';

/**
 * The root variables of platform/terraform (variables.tf), from a validated environment.
 * This is the contract between the toolkit and the Terraform: the names are exactly those
 * declared there (a unit test checks both directions).
 */

/** Values the toolkit resolves or creates before Terraform runs. */
export interface TfExtra {
  /** AMI of all nodes: NODE_AMI, or the newest Canonical Ubuntu 24.04 LTS of the region */
  amiId: string;
  /** OpenSSH public key line of the environment (common/ssh/<env>.pub); not secret */
  sshPublicKey: string;
  /** name of the secrets bucket (bootstrapNames().secretsBucket), already created */
  secretsBucket: string;
  /** ARN of the environment's KMS key, already created */
  kmsKeyArn: string;
  /** bucket holding the agent bundle: the state bucket (the secrets bucket holds only ciphertext) */
  agentBucket: string;
  /** S3 key of the manifest-sync bundle in agentBucket, e.g. agent/manifest-sync-<sha256>.mjs */
  agentObjectKey: string;
  /** lower-case hex SHA-256 of that bundle; nodes refuse a bundle with another digest */
  agentSha256: string;
}

/** One etcd member as Terraform declares it (variables.tf `etcd_members`). */
export type TfEtcdMember = {
  name: string;
  index: number;
  availability_zone: string;
  subnet_cidr: string;
  ip: string;
  dns_name: string;
};

/** The root variables, snake_case as in variables.tf. */
export type TfVars = {
  environment: string;
  region: string;
  availability_zones: string[];
  vpc_cidr: string;
  secure_subnets: string[];
  compute_subnets: string[];
  elb_subnets: string[];
  mgmt_subnets: string[];
  ssh_access_list: string[];
  kubeapi_access_list: string[];
  public_dns_zone: string;
  private_dns_zone: string;
  kubeapi_public_name: string;
  kubeapi_internal_name: string;
  kubernetes_version: string;
  etcd_version: string;
  service_cidr: string;
  pod_cidr: string;
  cluster_domain: string;
  master_instance_type: string;
  worker_instance_type: string;
  bastion_instance_type: string;
  /** desired workers */
  worker_count: number;
  /** upper bound of the worker ASG */
  worker_max: number;
  /** one master per member: this list's length is the master count */
  etcd_members: TfEtcdMember[];
  ami_id: string;
  ssh_user: string;
  ssh_public_key: string;
  secrets_bucket: string;
  kms_key_arn: string;
  agent_bucket: string;
  agent_object_key: string;
  agent_sha256: string;
  /** the public zone usually lives elsewhere: not managed for now */
  manage_public_zone: boolean;
  /** the masters' etcd snapshot timer and retention (ETCD_BACKUP_* keys) */
  etcd_backup: { interval_minutes: number; keep_all_hours: number; hourly_days: number; daily_days: number };
};

/**
 * Maps an environment and the toolkit-resolved values to the root variables. Pure.
 *
 * @param cfg a validated environment (parseEnvironment / loadEnvironment)
 * @param extra values resolved or created by the toolkit (AMI, key, buckets, agent bundle)
 * @returns the `-var-file` content; etcd members come from etcdMembers(cfg)
 *   (src/config/topology.ts), the single source shared with the PKI and the manifests
 */
export function tfVars(cfg: EnvConfig, extra: TfExtra): TfVars {
  return {
    environment: cfg.name,
    region: cfg.region,
    availability_zones: [...cfg.availabilityZones],
    vpc_cidr: cfg.vpcCidr,
    secure_subnets: [...cfg.subnets.secure],
    compute_subnets: [...cfg.subnets.compute],
    elb_subnets: [...cfg.subnets.elb],
    mgmt_subnets: [...cfg.subnets.mgmt],
    ssh_access_list: [...cfg.sshAccessList],
    kubeapi_access_list: [...cfg.kubeapiAccessList],
    public_dns_zone: cfg.publicDnsZone,
    private_dns_zone: cfg.privateDnsZone,
    kubeapi_public_name: cfg.kubeapiPublicName,
    kubeapi_internal_name: cfg.kubeapiInternalName,
    kubernetes_version: cfg.kubernetesVersion,
    etcd_version: cfg.etcdVersion,
    service_cidr: cfg.serviceCidr,
    pod_cidr: cfg.podCidr,
    cluster_domain: cfg.clusterDomain,
    master_instance_type: cfg.masters.instanceType,
    worker_instance_type: cfg.workers.instanceType,
    bastion_instance_type: cfg.bastion.instanceType,
    worker_count: cfg.workers.count,
    worker_max: cfg.workers.max,
    etcd_members: etcdMembers(cfg).map((m) => ({
      name: m.name,
      index: m.index,
      availability_zone: m.availabilityZone,
      subnet_cidr: m.subnetCidr,
      ip: m.ip,
      dns_name: m.dnsName,
    })),
    ami_id: extra.amiId,
    ssh_user: cfg.sshUser,
    ssh_public_key: extra.sshPublicKey.trim(),
    secrets_bucket: extra.secretsBucket,
    kms_key_arn: extra.kmsKeyArn,
    agent_bucket: extra.agentBucket,
    agent_object_key: extra.agentObjectKey,
    agent_sha256: extra.agentSha256,
    manage_public_zone: false,
    etcd_backup: {
      interval_minutes: cfg.etcdBackup.intervalMinutes,
      keep_all_hours: cfg.etcdBackup.keepAllS / 3600,
      hourly_days: cfg.etcdBackup.hourlyS / 86_400,
      daily_days: cfg.etcdBackup.dailyS / 86_400,
    },
  };
}
