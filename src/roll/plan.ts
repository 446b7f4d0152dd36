import type { FleetAsg, FleetInstance } from '../aws/fleet.js';
import type { NodeStatus } from '../secrets/status.js';

/**
 * Rolling replacement, the pure parts (issue 13 item 2): which instances need replacing
 * and why, and the quorum gate before a master goes. No I/O.
 */

/** The layers `roll` replaces. */
export const ROLL_LAYERS = ['compute', 'secure', 'bastion'] as const;
export type RollLayer = (typeof ROLL_LAYERS)[number];

/** One instance to replace and why. */
export interface Replacement {
  instanceId: string;
  name: string;
  asg: string;
  availabilityZone: string;
  privateIp: string | null;
  etcdMember: string | null;
  /** e.g. `launch template 3→4`, `AMI ami-1→ami-2`, `--force` */
  reasons: string[];
}

/**
 * The instances of `layer` that need replacing, as kops decides it
 * (pkg/instancegroups/instancegroups.go): the launch template (id or version) the
 * instance was launched from differs from the one its ASG launches now, or its AMI does;
 * `force` replaces every instance. Instances not running (pending, shutting down) are left
 * to their ASG. Masters come in a stable order (by etcd member), the leader last
 * (`leader`: its instance id), so leadership moves once.
 *
 * @returns the replacements in the order they will be taken
 */
export function planRoll(
  layer: RollLayer,
  instances: FleetInstance[],
  asgs: FleetAsg[],
  opts: { force?: boolean; leader?: string | null } = {},
): Replacement[] {
  const byAsg = new Map(asgs.map((g) => [g.name, g]));
  const out: Replacement[] = [];
  for (const i of instances) {
    if (i.layer !== layer || i.state !== 'running' || !i.asg) continue;
    const g = byAsg.get(i.asg);
    if (!g) continue;
    const reasons: string[] = [];
    if (g.launchTemplateId && i.launchTemplateId && g.launchTemplateId !== i.launchTemplateId) {
      reasons.push(`launch template ${i.launchTemplateId}→${g.launchTemplateId}`);
    } else if (g.launchTemplateVersion !== null && i.launchTemplateVersion !== g.launchTemplateVersion) {
      reasons.push(`launch template ${i.launchTemplateVersion ?? '?'}→${g.launchTemplateVersion}`);
    }
    if (g.imageId && i.imageId && g.imageId !== i.imageId) reasons.push(`AMI ${i.imageId}→${g.imageId}`);
    if (opts.force && !reasons.length) reasons.push('--force');
    if (!reasons.length) continue;
    out.push({
      instanceId: i.instanceId,
      name: i.name,
      asg: i.asg,
      availabilityZone: i.availabilityZone,
      privateIp: i.privateIp,
      etcdMember: i.etcdMember,
      reasons,
    });
  }
  const key = (r: Replacement) => `${r.etcdMember ?? ''}\0${r.asg}\0${r.instanceId}`;
  out.sort((a, b) => key(a).localeCompare(key(b)));
  if (opts.leader) {
    const i = out.findIndex((r) => r.instanceId === opts.leader);
    if (i >= 0) out.push(...out.splice(i, 1));
  }
  return out;
}

/** The quorum of an etcd cluster of `n` members: ⌊n/2⌋+1 (etcd FAQ "Why an odd number of cluster members?"). */
export function quorum(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** One master's view as the gate needs it. */
export interface MemberView {
  instanceId: string;
  /** etcd member name when known */
  member: string | null;
  status: NodeStatus | undefined;
}

/** How fresh the masters' reports must be for the quorum gate. */
export interface GateFreshness {
  /** seconds a health report may be old @default 180 (three of the agent's default 60 s heartbeats) */
  maxAgeS?: number;
  /**
   * reports taken at or before this time are stale whatever their age: the previous master
   * termination of the roll (a report from before it says nothing about the cluster since)
   */
  notBefore?: Date | null;
}

/**
 * The members whose etcd health report is missing or stale: older than `maxAgeS`, or taken
 * at or before `notBefore`. Each entry names the member and why.
 */
export function staleReports(members: MemberView[], now: Date, f: GateFreshness = {}): string[] {
  return stale(members, now, f).map((s) => s.why);
}

function stale(members: MemberView[], now: Date, f: GateFreshness): { instanceId: string; why: string }[] {
  const maxAgeS = f.maxAgeS ?? 180;
  const out: { instanceId: string; why: string }[] = [];
  const push = (m: MemberView, why: string) =>
    out.push({ instanceId: m.instanceId, why: `${memberName(m)}: ${why}` });
  for (const m of members) {
    const e = m.status?.health?.etcd;
    if (!e) {
      push(m, 'no health report');
      continue;
    }
    const at = Date.parse(e.checkedAt);
    const age = (now.getTime() - at) / 1000;
    if (!Number.isFinite(at) || age > maxAgeS) push(m, `health report ${Math.round(age)} s old`);
    else if (f.notBefore && at <= f.notBefore.getTime())
      push(
        m,
        `health report from ${e.checkedAt}, not after the previous termination at ${f.notBefore.toISOString()}`,
      );
  }
  return out;
}

const memberName = (m: MemberView) => `${m.member ? `${m.member} (${m.instanceId})` : m.instanceId}`;

/**
 * The gate before taking a master down (issue 13; etcd-manager pkg/controller: no change
 * unless every member is healthy): every member reports healthy in a fresh report (see
 * {@link GateFreshness}: within `maxAgeS`, and taken after the previous termination of the
 * roll — an older report was accepted before, so a member that failed since the last
 * master went down passed the gate on the strength of what it said before), one reports
 * being the leader, and the members left healthy with `target` down still form a quorum of
 * the cluster.
 * @returns undefined when the master may go; otherwise why not, naming the member
 */
export function quorumGate(
  members: MemberView[],
  target: string,
  now: Date,
  freshness: GateFreshness = {},
): string | undefined {
  const n = members.length;
  const old = stale(members, now, freshness);
  const unhealthy = old.map((s) => s.why);
  const staleIds = new Set(old.map((s) => s.instanceId));
  let leaders = 0;
  for (const m of members) {
    const e = m.status?.health?.etcd;
    if (!e || staleIds.has(m.instanceId)) continue;
    if (!e.healthy) unhealthy.push(`${memberName(m)}: unhealthy (${e.reason || 'no reason given'})`);
    else if (e.isLeader) leaders++;
  }
  if (unhealthy.length)
    return `etcd member${unhealthy.length > 1 ? 's' : ''} not healthy: ${unhealthy.join('; ')}`;
  if (leaders !== 1) return leaders ? `etcd reports ${leaders} leaders` : 'etcd has no leader';
  const left = members.filter((m) => m.instanceId !== target).length;
  if (left < quorum(n)) {
    return `with ${target} down, ${left} of ${n} members would be left, below the quorum of ${quorum(n)}`;
  }
  return undefined;
}
