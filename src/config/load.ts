import { readdir } from 'node:fs/promises';
import path from 'node:path';
import dotenv from 'dotenv';
import { clip, type Problem, UserError, ValidationError } from '../errors.js';
import { readRegularFile } from '../fsutil.js';
import { displayPath, environmentsDir } from '../paths.js';
import type { Waiver } from '../policy/types.js';
import { cidrContains, cidrOverlaps, parseCidr } from './cidr.js';
import { ENV_NAME_RE, type EnvKey, KEYS, type KeySpec } from './schema.js';

/** A validated environment: everything `run` and Terraform need, typed. */
export interface EnvConfig {
  /** environment name, from the file name (`environments/<name>.env`) */
  name: string;
  /** path of the file it was loaded from */
  file: string;
  region: string;
  /** AWS profile used when the caller has no AWS_* credentials; defaults to the environment name */
  awsProfile: string;
  /** when set, every command refuses to act with credentials of another account */
  awsAccountId?: string;
  availabilityZones: string[];
  vpcCidr: string;
  subnets: { secure: string[]; compute: string[]; elb: string[]; mgmt: string[] };
  sshAccessList: string[];
  kubeapiAccessList: string[];
  publicDnsZone: string;
  privateDnsZone: string;
  /** public API name: kube-<env>.<PUBLIC_DNS_ZONE> */
  kubeapiPublicName: string;
  /** internal API name: kube.<PRIVATE_DNS_ZONE> */
  kubeapiInternalName: string;
  kubernetesVersion: string;
  etcdVersion: string;
  serviceCidr: string;
  podCidr: string;
  clusterDomain: string;
  masters: { instanceType: string; count: number };
  workers: { instanceType: string; count: number; max: number };
  bastion: { instanceType: string };
  nodeAmi?: string;
  sshUser: string;
  /** etcd snapshots: interval and retention windows (src/backup/retention.ts) */
  etcdBackup: { intervalMinutes: number; keepAllS: number; hourlyS: number; dailyS: number };
  /** policy waivers (POLICY_WAIVERS); [] when none */
  waivers: Waiver[];
}

/** Line number (1-based) of each key as written, for error messages. */
function keyLines(text: string, file: string, problems: Problem[]): Map<string, number> {
  const lines = new Map<string, number>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=/.exec(line);
    if (!m) {
      problems.push({ file, line: i + 1, message: 'not a KEY=value line' });
      return;
    }
    const key = m[1]!;
    if (lines.has(key)) {
      problems.push({ file, line: i + 1, key, message: `set twice (first on line ${lines.get(key)})` });
      return;
    }
    lines.set(key, i + 1);
  });
  return lines;
}

/**
 * Parses and validates environment file text. Pure: no I/O.
 *
 * @param name environment name (validated: a DNS label of at most 24 characters)
 * @param text file contents (dotenv format)
 * @param file path shown in messages
 * @returns the typed configuration
 * @throws ValidationError listing every problem with file, line and key (exit code 2)
 */
export function parseEnvironment(name: string, text: string, file: string): EnvConfig {
  const problems: Problem[] = [];
  if (!ENV_NAME_RE.test(name)) {
    problems.push({
      file,
      message: `environment name "${name}" must be 2-24 lower-case letters, digits or '-', starting with a letter`,
    });
  }
  const lines = keyLines(text, file, problems);
  const raw = dotenv.parse(text);
  const values: Partial<Record<EnvKey, unknown>> = {};
  for (const key of Object.keys(raw)) {
    if (!(key in KEYS)) {
      problems.push({ file, line: lines.get(key), key, message: 'unknown key' });
    }
  }
  for (const [key, spec] of Object.entries(KEYS) as [EnvKey, KeySpec][]) {
    const given = raw[key];
    const value = given ?? spec.default;
    if (value === undefined) {
      problems.push({ file, key, message: `required key is missing (${spec.description})` });
      continue;
    }
    if (value === '' && spec.default === '') continue; // optional, unset
    const res = spec.schema.safeParse(value);
    if (!res.success) {
      const msg = res.error.issues.map((i) => i.message).join('; ');
      problems.push({ file, line: lines.get(key), key, message: `${clip(JSON.stringify(value))}: ${msg}` });
      continue;
    }
    values[key] = res.data;
  }
  if (problems.length === 0) crossChecks(values, lines, file, problems);
  if (problems.length > 0) {
    throw new ValidationError(`${displayPath(file)}: invalid environment file`, problems);
  }
  const v = values as Record<EnvKey, never>;
  const privateZone: string = (v.PRIVATE_DNS_ZONE as string | undefined) || `${name}.internal`;
  return {
    name,
    file,
    region: v.AWS_REGION,
    awsProfile: (v.AWS_PROFILE as string | undefined) || name,
    ...(v.AWS_ACCOUNT_ID ? { awsAccountId: v.AWS_ACCOUNT_ID as string } : {}),
    availabilityZones: v.AVAILABILITY_ZONES,
    vpcCidr: v.VPC_CIDR,
    subnets: {
      secure: v.SECURE_SUBNETS,
      compute: v.COMPUTE_SUBNETS,
      elb: v.ELB_SUBNETS,
      mgmt: v.MGMT_SUBNETS,
    },
    sshAccessList: v.SSH_ACCESS_LIST,
    kubeapiAccessList: v.KUBEAPI_ACCESS_LIST,
    publicDnsZone: v.PUBLIC_DNS_ZONE,
    privateDnsZone: privateZone,
    kubeapiPublicName: `kube-${name}.${v.PUBLIC_DNS_ZONE as string}`,
    kubeapiInternalName: `kube.${privateZone}`,
    kubernetesVersion: v.KUBERNETES_VERSION,
    etcdVersion: v.ETCD_VERSION,
    serviceCidr: v.SERVICE_CIDR,
    podCidr: v.POD_CIDR,
    clusterDomain: v.CLUSTER_DOMAIN,
    masters: { instanceType: v.MASTER_INSTANCE_TYPE, count: v.MASTER_COUNT },
    workers: { instanceType: v.WORKER_INSTANCE_TYPE, count: v.WORKER_COUNT, max: v.WORKER_MAX },
    bastion: { instanceType: v.BASTION_INSTANCE_TYPE },
    ...(v.NODE_AMI ? { nodeAmi: v.NODE_AMI as string } : {}),
    sshUser: v.SSH_USER,
    etcdBackup: {
      intervalMinutes: v.ETCD_BACKUP_INTERVAL_MINUTES,
      keepAllS: (v.ETCD_BACKUP_KEEP_ALL_HOURS as number) * 3600,
      hourlyS: (v.ETCD_BACKUP_HOURLY_DAYS as number) * 86_400,
      dailyS: (v.ETCD_BACKUP_DAILY_DAYS as number) * 86_400,
    },
    waivers: (v.POLICY_WAIVERS as Waiver[] | undefined) ?? [],
  };
}

/** Checks between keys: subnet counts per zone, containment in the VPC, overlaps. */
function crossChecks(
  values: Partial<Record<EnvKey, unknown>>,
  lines: Map<string, number>,
  file: string,
  problems: Problem[],
): void {
  const at = (key: string, message: string) => problems.push({ file, line: lines.get(key), key, message });
  const zones = values.AVAILABILITY_ZONES as string[];
  const region = values.AWS_REGION as string;
  for (const z of zones) if (!z.startsWith(region)) at('AVAILABILITY_ZONES', `${z} is not in ${region}`);
  if (new Set(zones).size !== zones.length) at('AVAILABILITY_ZONES', 'lists a zone twice');
  const vpc = parseCidr(values.VPC_CIDR as string)!;
  const seen: { key: string; cidr: string }[] = [];
  for (const key of ['SECURE_SUBNETS', 'COMPUTE_SUBNETS', 'ELB_SUBNETS', 'MGMT_SUBNETS'] as const) {
    const subnets = values[key] as string[];
    if (subnets.length !== zones.length) {
      at(key, `lists ${subnets.length} subnets for ${zones.length} availability zones (one per zone)`);
    }
    for (const s of subnets) {
      const c = parseCidr(s)!;
      if (!cidrContains(vpc, c)) at(key, `${s} is outside VPC_CIDR ${values.VPC_CIDR as string}`);
      const clash = seen.find((o) => cidrOverlaps(parseCidr(o.cidr)!, c));
      if (clash) at(key, `${s} overlaps ${clash.cidr} (${clash.key})`);
      seen.push({ key, cidr: s });
    }
  }
  for (const key of ['SERVICE_CIDR', 'POD_CIDR'] as const) {
    const c = parseCidr(values[key] as string)!;
    if (cidrOverlaps(vpc, c))
      at(key, `${values[key] as string} overlaps VPC_CIDR ${values.VPC_CIDR as string}`);
  }
  if (cidrOverlaps(parseCidr(values.SERVICE_CIDR as string)!, parseCidr(values.POD_CIDR as string)!)) {
    at('POD_CIDR', 'overlaps SERVICE_CIDR');
  }
  const keepAllH = values.ETCD_BACKUP_KEEP_ALL_HOURS as number;
  const hourlyD = values.ETCD_BACKUP_HOURLY_DAYS as number;
  if (keepAllH > hourlyD * 24) {
    at('ETCD_BACKUP_KEEP_ALL_HOURS', `is longer than ETCD_BACKUP_HOURLY_DAYS (${hourlyD} days)`);
  }
  if (hourlyD > (values.ETCD_BACKUP_DAILY_DAYS as number)) {
    at('ETCD_BACKUP_HOURLY_DAYS', 'is longer than ETCD_BACKUP_DAILY_DAYS');
  }
  if ((values.WORKER_MAX as number) < (values.WORKER_COUNT as number)) {
    at('WORKER_MAX', `is below WORKER_COUNT (${values.WORKER_COUNT as number})`);
  }
}

/** Names of the environments in environments/ (files `<name>.env`), sorted. */
export async function listEnvironments(dir = environmentsDir()): Promise<string[]> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  return entries
    .filter((f) => f.endsWith('.env'))
    .map((f) => f.slice(0, -'.env'.length))
    .sort();
}

/**
 * Loads and validates `environments/<name>.env`.
 *
 * @throws UserError (exit 2) when the file does not exist, naming the available environments
 * @throws ValidationError (exit 2) when the file is invalid
 */
export async function loadEnvironment(name: string, dir = environmentsDir()): Promise<EnvConfig> {
  const file = path.join(dir, `${name}.env`);
  let text: string;
  try {
    text = (await readRegularFile(file)).toString('utf8');
  } catch (e) {
    if (e instanceof UserError) throw e;
    const known = await listEnvironments(dir);
    throw new UserError(`unknown environment "${name}": ${displayPath(file)} does not exist`, {
      hint: known.length
        ? `available environments: ${known.join(', ')}`
        : `no environments in ${displayPath(dir)}`,
    });
  }
  return parseEnvironment(name, text, displayPath(file));
}
