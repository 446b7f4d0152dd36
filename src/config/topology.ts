import { nthAddress } from './cidr.js';
import type { EnvConfig } from './load.js';

/**
 * Derived names and addresses of an environment: one source of truth shared by the PKI
 * (certificate SANs), the manifests (etcd member list) and Terraform (the ENIs that give
 * each etcd member a fixed address, passed as the `etcd_members` variable).
 */

/** One etcd member: a fixed ENI address in a secure subnet, claimed by its master at boot. */
export interface EtcdMember {
  /** member name, `etcd-<index>` */
  name: string;
  index: number;
  availabilityZone: string;
  /** the secure subnet's CIDR the member lives in */
  subnetCidr: string;
  /** fixed private IP of the member's ENI */
  ip: string;
  /** `etcd-<index>.<private zone>` */
  dnsName: string;
}

/**
 * The etcd members: MASTER_COUNT members spread round-robin over the availability zones;
 * member i takes address 10 + floor(i / zones) of its zone's secure subnet (AWS reserves
 * the first four addresses of a subnet; 10+ leaves room for them and for humans).
 */
export function etcdMembers(cfg: EnvConfig): EtcdMember[] {
  const zones = cfg.availabilityZones.length;
  return Array.from({ length: cfg.masters.count }, (_, i) => {
    const z = i % zones;
    const subnetCidr = cfg.subnets.secure[z]!;
    return {
      name: `etcd-${i}`,
      index: i,
      availabilityZone: cfg.availabilityZones[z]!,
      subnetCidr,
      ip: nthAddress(subnetCidr, 10 + Math.floor(i / zones)),
      dnsName: `etcd-${i}.${cfg.privateDnsZone}`,
    };
  });
}

/** The first address of the service CIDR: the `kubernetes` Service's cluster IP. */
export function kubernetesServiceIp(cfg: EnvConfig): string {
  return nthAddress(cfg.serviceCidr, 1);
}

/** The tenth address of the service CIDR: the cluster DNS Service IP (kubeadm's convention). */
export function clusterDnsIp(cfg: EnvConfig): string {
  return nthAddress(cfg.serviceCidr, 10);
}

/** Names of the environment's AWS resources that the toolkit bootstraps before Terraform. */
export interface BootstrapNames {
  /** S3 bucket holding Terraform state: kp-<env>-<account>-<region>-tfstate (≤ 63 chars) */
  stateBucket: string;
  /** S3 bucket holding the encrypted secrets and manifests: kp-<env>-<account>-<region>-secrets */
  secretsBucket: string;
  /** KMS alias of the environment key: alias/kube-platform/<env> */
  kmsAlias: string;
  /** state object key in the state bucket */
  stateKey: string;
}

/**
 * Bucket and key names. S3 bucket names are global, so they carry the account and the
 * region; with an environment name of at most 24 characters they stay within S3's 63.
 */
export function bootstrapNames(cfg: Pick<EnvConfig, 'name' | 'region'>, accountId: string): BootstrapNames {
  const base = `kp-${cfg.name}-${accountId}-${cfg.region}`;
  return {
    stateBucket: `${base}-tfstate`,
    secretsBucket: `${base}-secrets`,
    kmsAlias: `alias/kube-platform/${cfg.name}`,
    stateKey: `${cfg.name}/platform.tfstate`,
  };
}
