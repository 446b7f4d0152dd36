import { glob } from 'ssh-config';
import { parseCidr } from '../config/cidr.js';
import type { EnvConfig } from '../config/load.js';

/**
 * ssh_config(5) host patterns for an environment's private hosts.
 *
 * ssh has no CIDR matching: a pattern is a glob where `*` matches any run of characters and
 * `?` exactly one (ssh_config(5) PATTERNS), compared with the host name as typed. An IPv4
 * range therefore becomes one pattern per octet-aligned block: `10.80.*` for a /16,
 * `10.80.10.*` for a /24, and a prefix between two octet boundaries is listed as the blocks
 * of the next boundary (a /20 becomes sixteen `a.b.c.*` patterns, a /28 sixteen addresses).
 */

/** At most this many patterns per range (a prefix at most 7 bits above an octet boundary). */
const MAX_PATTERNS = 128;

/**
 * The ssh host patterns that match exactly the IPv4 addresses of `cidr` (written as
 * dotted quads).
 *
 * @param cidr an IPv4 CIDR with no host bits set, prefix length 8..32 (AWS VPCs are /16../28:
 *   https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html)
 * @returns 1 to 128 patterns, in address order, e.g. `['10.80.*']` for 10.80.0.0/16,
 *   `['10.80.0.*', …, '10.80.15.*']` for 10.80.0.0/20, `['10.80.10.16', …]` for a /28
 * @throws Error when `cidr` is not such a CIDR (callers pass validated configuration)
 */
export function sshPatternsForCidr(cidr: string): string[] {
  const c = parseCidr(cidr);
  if (!c || c.bits < 8) throw new Error(`not an IPv4 CIDR with a prefix of /8 to /32: ${cidr}`);
  const boundary = Math.ceil(c.bits / 8) * 8;
  const count = 2 ** (boundary - c.bits);
  if (count > MAX_PATTERNS) throw new Error(`${cidr} would need ${count} ssh patterns`);
  const step = 2 ** (32 - boundary);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const v = c.base + i * step;
    const octets = [24, 16, 8, 0].map((s) => Math.floor(v / 2 ** s) % 256).slice(0, boundary / 8);
    out.push(boundary === 32 ? octets.join('.') : `${octets.join('.')}.*`);
  }
  return out;
}

/**
 * The private DNS names EC2 gives instances of a region: `ip-10-80-10-12.eu-west-1.compute.internal`,
 * except us-east-1, where the domain is `ec2.internal`
 * (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ec2-instance-naming.html).
 *
 * @returns the ssh pattern for those names, e.g. `*.eu-west-1.compute.internal`
 */
export function ec2PrivateDnsPattern(region: string): string {
  return region === 'us-east-1' ? '*.ec2.internal' : `*.${region}.compute.internal`;
}

/**
 * Every pattern that names a private host of the environment: its VPC range
 * ({@link sshPatternsForCidr}) and EC2's private DNS names in its region.
 */
export function privateHostPatterns(cfg: Pick<EnvConfig, 'vpcCidr' | 'region'>): string[] {
  return [...sshPatternsForCidr(cfg.vpcCidr), ec2PrivateDnsPattern(cfg.region)];
}

/**
 * True when ssh would match `host` (as typed) against one of `patterns` (ssh_config(5)
 * PATTERNS, evaluated by the ssh-config package's `glob`; our patterns are lower case, and
 * ssh compares host names case-insensitively).
 */
export function matchesSshPatterns(host: string, patterns: string[]): boolean {
  return glob(patterns, host.toLowerCase());
}
