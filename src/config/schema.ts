import { z } from 'zod';
import { parseWaivers } from '../policy/waivers.js';
import { parseCidr } from './cidr.js';

/**
 * The environment file schema (DESIGN.md §3): every key an `environments/<env>.env` file
 * may hold, its validation and its default. Values are validated here before they reach a
 * template or Terraform, so a hostile value can never inject YAML or HCL: every string is
 * constrained to a narrow character set.
 */

/** Environment names become bucket names, IAM names and tags: a DNS label, ≤ 24 chars. */
export const ENV_NAME_RE = /^[a-z][a-z0-9-]{0,22}[a-z0-9]$/;

const dnsLabel = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
/** A lower-case DNS name of two or more labels (RFC 1123), no trailing dot. */
export const DNS_NAME_RE = new RegExp(`^(?=.{1,253}$)${dnsLabel}(\\.${dnsLabel})+$`);

const cidr = z.string().refine((v) => parseCidr(v) !== undefined, {
  message: 'must be an IPv4 CIDR with no host bits set, e.g. 10.80.0.0/16',
});
const list = (item: z.ZodType<string, string>) =>
  z
    .string()
    .transform((v) => v.split(',').map((s) => s.trim()))
    .pipe(z.array(item).min(1, 'must list at least one value'));
const dnsName = z.string().regex(DNS_NAME_RE, 'must be a lower-case DNS name such as example.com');
const instanceType = z
  .string()
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an EC2 instance type such as t3.medium');
const count = (min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));
const version = z.string().regex(/^v\d+\.\d+\.\d+$/, 'must be a release such as v1.34.2');

/** One key of the schema. */
export interface KeySpec {
  schema: z.ZodType;
  /** default as it would be written in the file; absent = required */
  default?: string;
  description: string;
}

/**
 * Every key an environment file may hold. A key not listed here is an error (typos in
 * production configuration must not pass silently).
 */
export const KEYS = {
  AWS_REGION: {
    schema: z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d$/, 'must be an AWS region such as eu-west-1'),
    description: 'AWS region of the environment',
  },
  AWS_PROFILE: {
    schema: z.string().regex(/^[A-Za-z0-9_.+-]{1,64}$/, 'must be a profile name'),
    default: '',
    description:
      'AWS profile to use when no AWS_* credentials are in the caller environment (default: the environment name)',
  },
  AWS_ACCOUNT_ID: {
    schema: z.string().regex(/^\d{12}$/, 'must be a 12-digit AWS account id'),
    default: '',
    description:
      'refuse to act unless the credentials belong to this account (guards prod against the wrong profile)',
  },
  AVAILABILITY_ZONES: {
    schema: list(
      z.string().regex(/^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$/, 'must be an availability zone such as eu-west-1a'),
    ),
    description: 'comma-separated availability zones; one subnet of each layer per zone',
  },
  VPC_CIDR: { schema: cidr, description: 'the VPC address range' },
  SECURE_SUBNETS: { schema: list(cidr), description: 'masters/etcd subnets, one per zone (private)' },
  COMPUTE_SUBNETS: { schema: list(cidr), description: 'worker subnets, one per zone (private)' },
  ELB_SUBNETS: { schema: list(cidr), description: 'load balancer subnets, one per zone (public)' },
  MGMT_SUBNETS: { schema: list(cidr), description: 'bastion subnets, one per zone (public)' },
  SSH_ACCESS_LIST: { schema: list(cidr), description: 'CIDRs allowed to reach the bastion on port 22' },
  KUBEAPI_ACCESS_LIST: {
    schema: list(cidr),
    description: 'CIDRs allowed to reach the Kubernetes API on 443',
  },
  PUBLIC_DNS_ZONE: { schema: dnsName, description: 'public DNS zone; the API is kube-<env>.<zone>' },
  PRIVATE_DNS_ZONE: {
    schema: dnsName,
    default: '',
    description: 'private DNS zone (default: <env>.internal)',
  },
  KUBERNETES_VERSION: {
    schema: version,
    default: 'v1.34.2',
    description: 'Kubernetes release of the control plane',
  },
  ETCD_VERSION: { schema: version, default: 'v3.6.4', description: 'etcd release' },
  SERVICE_CIDR: { schema: cidr, default: '10.32.0.0/16', description: 'Kubernetes service range' },
  POD_CIDR: { schema: cidr, default: '10.200.0.0/16', description: 'Kubernetes pod range' },
  CLUSTER_DOMAIN: { schema: dnsName, default: 'cluster.local', description: 'cluster DNS domain' },
  MASTER_INSTANCE_TYPE: {
    schema: instanceType,
    default: 't3.medium',
    description: 'instance type of masters',
  },
  MASTER_COUNT: {
    schema: count(1, 7).refine((n) => n % 2 === 1, 'must be odd (etcd needs a majority)'),
    default: '3',
    description: 'number of masters (etcd members): 1, 3, 5 or 7',
  },
  WORKER_INSTANCE_TYPE: {
    schema: instanceType,
    default: 't3.large',
    description: 'instance type of workers',
  },
  WORKER_COUNT: { schema: count(0, 500), default: '3', description: 'desired number of workers' },
  WORKER_MAX: { schema: count(0, 1000), default: '10', description: 'upper bound of the worker ASG' },
  BASTION_INSTANCE_TYPE: {
    schema: instanceType,
    default: 't3.micro',
    description: 'instance type of the bastion',
  },
  NODE_AMI: {
    schema: z.string().regex(/^ami-[0-9a-f]{8,17}$/, 'must be an AMI id such as ami-0123456789abcdef0'),
    default: '',
    description: 'AMI of all nodes (default: the newest Canonical Ubuntu 24.04 LTS in the region)',
  },
  ETCD_BACKUP_INTERVAL_MINUTES: {
    // the masters' timer fires at minutes 0, n, 2n... of every hour (OnCalendar=*:0/n)
    schema: count(1, 60).refine((n) => 60 % n === 0, 'must divide 60: 1-6, 10, 12, 15, 20, 30 or 60'),
    default: '15',
    description: 'minutes between etcd snapshots taken by the masters (the recovery point objective)',
  },
  ETCD_BACKUP_KEEP_ALL_HOURS: {
    schema: count(0, 720),
    default: '1',
    description: 'keep every etcd snapshot younger than this many hours (etcd-manager: 1)',
  },
  ETCD_BACKUP_HOURLY_DAYS: {
    schema: count(0, 365),
    default: '7',
    description: 'then keep one etcd snapshot per hour for this many days (etcd-manager: 7)',
  },
  ETCD_BACKUP_DAILY_DAYS: {
    schema: count(0, 3650),
    default: '90',
    description: 'then keep one etcd snapshot per day for this many days (etcd-manager: 90)',
  },
  SSH_USER: {
    schema: z.string().regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a Unix user name'),
    default: 'ubuntu',
    description: 'login user of the node image',
  },
  POLICY_WAIVERS: {
    schema: z.string().transform((v, ctx) => {
      const { waivers, errors } = parseWaivers(v);
      for (const message of errors) ctx.addIssue({ code: 'custom', message });
      return waivers;
    }),
    default: '',
    description:
      'policy waivers, ";"-separated, each "<rule id> until <YYYY-MM-DD>: <reason>" (README "policy")',
  },
} satisfies Record<string, KeySpec>;

export type EnvKey = keyof typeof KEYS;
