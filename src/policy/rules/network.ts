import { liveOfType, type PlanView } from '../plan-json.js';

/**
 * Security-group ingress of a plan, normalised over the three ways the AWS provider spells
 * it: `aws_vpc_security_group_ingress_rule` (one rule per resource, what this platform
 * uses), `aws_security_group_rule` of type ingress, and inline `ingress` blocks of
 * `aws_security_group`.
 */

export interface Ingress {
  /** address of the resource that holds the rule */
  address: string;
  /** attribute holding the source, e.g. `cidr_ipv4` or `ingress[0].cidr_blocks` */
  attribute: string;
  /** "tcp", "udp", "icmp", … or "-1" (all protocols, all ports) */
  protocol: string;
  /** port range; undefined for all ports */
  from?: number;
  to?: number;
  /** the source CIDR (IPv4 or IPv6); undefined when the source is a security group */
  cidr?: string;
  /** name of the security group the rule belongs to, when the plan tells */
  group?: string;
}

export const WORLD = ['0.0.0.0/0', '::/0'];

const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
const allPorts = (protocol: string) => protocol === '-1' || protocol === 'all';

/** true when the rule admits `port`/`protocol` (a rule for all protocols admits every port). */
export function admits(i: Ingress, port: number, protocol = 'tcp'): boolean {
  if (allPorts(i.protocol)) return true;
  if (i.protocol !== protocol && i.protocol !== (protocol === 'tcp' ? '6' : '17')) return false;
  if (i.from === undefined || i.to === undefined) return true;
  // from_port = to_port = -1 on tcp/udp is not valid AWS input; treat -1 as "all"
  if (i.from === -1) return true;
  return i.from <= port && port <= i.to;
}

/** Ports outside {80, 443} the rule admits, as a label ("22", "0-65535", "all"); undefined when none. */
export function portsBeyondWeb(i: Ingress): string | undefined {
  if (allPorts(i.protocol)) return 'all';
  if (i.protocol === 'icmp' || i.protocol === '1' || i.protocol === 'icmpv6' || i.protocol === '58')
    return undefined;
  const from = i.from ?? 0;
  const to = i.to ?? 65535;
  for (let p = from; p <= to; p++)
    if (p !== 80 && p !== 443) return from === to ? String(from) : `${from}-${to}`;
  return undefined;
}

/** Security groups of the plan by name, with their tags (to tell load-balancer groups apart). */
export function securityGroups(
  plan: PlanView,
): Map<string, { address: string; tags: Record<string, string>; id?: string }> {
  const out = new Map<string, { address: string; tags: Record<string, string>; id?: string }>();
  for (const sg of liveOfType(plan, 'aws_security_group')) {
    const name = String(sg.after.name ?? sg.address);
    const tags = (sg.after.tags ?? {}) as Record<string, string>;
    const id = typeof sg.after.id === 'string' ? sg.after.id : undefined;
    out.set(name, { address: sg.address, tags, ...(id ? { id } : {}) });
  }
  return out;
}

/** Every ingress rule of the plan that exists after the apply. */
export function ingressRules(plan: PlanView): Ingress[] {
  const out: Ingress[] = [];
  const groups = securityGroups(plan);
  const byId = new Map([...groups].filter(([, g]) => g.id).map(([name, g]) => [g.id!, name]));
  for (const r of liveOfType(plan, 'aws_vpc_security_group_ingress_rule')) {
    const a = r.after;
    const tags = (a.tags ?? {}) as Record<string, string>;
    const group =
      tags.SecurityGroup ??
      (typeof a.security_group_id === 'string' ? byId.get(a.security_group_id) : undefined);
    const base = {
      address: r.address,
      protocol: String(a.ip_protocol ?? '-1'),
      ...(num(a.from_port) !== undefined ? { from: num(a.from_port) } : {}),
      ...(num(a.to_port) !== undefined ? { to: num(a.to_port) } : {}),
      ...(group ? { group } : {}),
    };
    if (typeof a.cidr_ipv4 === 'string') out.push({ ...base, attribute: 'cidr_ipv4', cidr: a.cidr_ipv4 });
    else if (typeof a.cidr_ipv6 === 'string')
      out.push({ ...base, attribute: 'cidr_ipv6', cidr: a.cidr_ipv6 });
    else out.push({ ...base, attribute: 'referenced_security_group_id' });
  }
  for (const r of liveOfType(plan, 'aws_security_group_rule')) {
    const a = r.after;
    if (a.type !== 'ingress') continue;
    const group = typeof a.security_group_id === 'string' ? byId.get(a.security_group_id) : undefined;
    const base = {
      address: r.address,
      protocol: String(a.protocol ?? '-1'),
      ...(num(a.from_port) !== undefined ? { from: num(a.from_port) } : {}),
      ...(num(a.to_port) !== undefined ? { to: num(a.to_port) } : {}),
      ...(group ? { group } : {}),
    };
    for (const key of ['cidr_blocks', 'ipv6_cidr_blocks'] as const) {
      for (const c of (a[key] ?? []) as string[]) out.push({ ...base, attribute: key, cidr: c });
    }
  }
  for (const sg of liveOfType(plan, 'aws_security_group')) {
    const group = String(sg.after.name ?? sg.address);
    ((sg.after.ingress ?? []) as Record<string, unknown>[]).forEach((b, n) => {
      const base = {
        address: sg.address,
        protocol: String(b.protocol ?? '-1'),
        ...(num(b.from_port) !== undefined ? { from: num(b.from_port) } : {}),
        ...(num(b.to_port) !== undefined ? { to: num(b.to_port) } : {}),
        group,
      };
      for (const key of ['cidr_blocks', 'ipv6_cidr_blocks'] as const) {
        for (const c of (b[key] ?? []) as string[])
          out.push({ ...base, attribute: `ingress[${n}].${key}`, cidr: c });
      }
    });
  }
  return out;
}

/** true when the group is tagged as a load balancer's (`Attachment = load-balancer`, modules/network). */
export function isLoadBalancerGroup(plan: PlanView, group: string | undefined): boolean {
  if (group === undefined) return false;
  return securityGroups(plan).get(group)?.tags.Attachment === 'load-balancer';
}
