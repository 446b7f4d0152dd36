import type { FleetAsg, FleetInstance } from '../../src/aws/fleet.js';
import type { KubeApi, PodInfo } from '../../src/kube/api.js';
import { drainNode } from '../../src/roll/drain.js';
import { planRoll, quorum, quorumGate, staleReports } from '../../src/roll/plan.js';
import type { NodeStatus } from '../../src/secrets/status.js';

const inst = (id: string, o: Partial<FleetInstance> = {}): FleetInstance => ({
  instanceId: id,
  name: 'prod-compute',
  layer: 'compute',
  asg: 'prod-compute',
  state: 'running',
  privateIp: '10.0.0.1',
  availabilityZone: 'eu-west-1a',
  imageId: 'ami-1',
  launchTemplateId: 'lt-1',
  launchTemplateVersion: 3,
  etcdMember: null,
  launchTime: null,
  ...o,
});
const asg = (o: Partial<FleetAsg> = {}): FleetAsg => ({
  name: 'prod-compute',
  layer: 'compute',
  desired: 2,
  launchTemplateId: 'lt-1',
  launchTemplateVersion: 4,
  imageId: 'ami-1',
  instances: [],
  ...o,
});

test('planRoll: launch template version from the instance tag, AMI, --force; other layers and non-running left out', () => {
  const p = planRoll(
    'compute',
    [
      inst('i-2'),
      inst('i-1', { launchTemplateVersion: 4 }),
      inst('i-3', { state: 'pending' }),
      inst('i-m', { layer: 'secure' }),
    ],
    [asg()],
  );
  expect(p.map((r) => [r.instanceId, r.reasons])).toEqual([['i-2', ['launch template 3→4']]]);
  const ami = planRoll('compute', [inst('i-1', { launchTemplateVersion: 4, imageId: 'ami-0' })], [asg()]);
  expect(ami[0]!.reasons).toEqual(['AMI ami-0→ami-1']);
  expect(
    planRoll('compute', [inst('i-1', { launchTemplateVersion: 4 })], [asg()], { force: true })[0]!.reasons,
  ).toEqual(['--force']);
  expect(planRoll('compute', [inst('i-1', { launchTemplateId: 'lt-0' })], [asg()])[0]!.reasons).toEqual([
    'launch template lt-0→lt-1',
  ]);
});

test('planRoll orders masters by member, the leader last', () => {
  const m = (id: string, member: string) =>
    inst(id, { layer: 'secure', asg: `a-${member}`, etcdMember: member });
  const asgs = ['etcd-0', 'etcd-1', 'etcd-2'].map((x) => asg({ name: `a-${x}`, layer: 'secure' }));
  const p = planRoll('secure', [m('i-c', 'etcd-2'), m('i-a', 'etcd-0'), m('i-b', 'etcd-1')], asgs, {
    leader: 'i-a',
  });
  expect(p.map((r) => r.etcdMember)).toEqual(['etcd-1', 'etcd-2', 'etcd-0']);
});

const now = new Date('2026-12-01T12:00:00Z');
function status(healthy: boolean, leader: boolean, at = now): NodeStatus {
  return {
    node: 'x',
    layer: 'secure',
    generation: 1,
    indexDigest: null,
    appliedAt: null,
    heartbeatAt: at.toISOString(),
    error: null,
    fileErrors: [],
    health: {
      etcd: {
        checkedAt: at.toISOString(),
        healthy,
        reason: healthy ? '' : 'connection refused',
        hasLeader: healthy,
        isLeader: leader,
        version: '3.6.5',
      },
    },
  };
}

test('quorumGate: all healthy with a leader passes for 3; one down, no leader, stale, or a single member refuses', () => {
  const ok = [
    { instanceId: 'i-a', member: 'etcd-0', status: status(true, true) },
    { instanceId: 'i-b', member: 'etcd-1', status: status(true, false) },
    { instanceId: 'i-c', member: 'etcd-2', status: status(true, false) },
  ];
  expect(quorum(3)).toBe(2);
  expect(quorum(5)).toBe(3);
  expect(quorumGate(ok, 'i-b', now)).toBeUndefined();
  const down = [...ok.slice(0, 2), { ...ok[2]!, status: status(false, false) }];
  expect(quorumGate(down, 'i-b', now)).toBe(
    'etcd member not healthy: etcd-2 (i-c): unhealthy (connection refused)',
  );
  expect(
    quorumGate(
      ok.map((m) => ({ ...m, status: status(true, false) })),
      'i-b',
      now,
    ),
  ).toBe('etcd has no leader');
  const stale = [
    ...ok.slice(0, 2),
    { ...ok[2]!, status: status(true, false, new Date(now.getTime() - 600_000)) },
  ];
  expect(quorumGate(stale, 'i-b', now)).toMatch(/etcd-2 \(i-c\): health report 600 s old/);
  expect(quorumGate([ok[0]!], 'i-a', now)).toBe(
    'with i-a down, 0 of 1 members would be left, below the quorum of 1',
  );
});

test('quorumGate: a report taken before the previous termination is stale, however young (the roll accepted those before)', () => {
  const terminatedAt = new Date(now.getTime() - 30_000);
  const before = new Date(terminatedAt.getTime() - 20_000); // 50 s old: young enough for maxAgeS
  const after = new Date(terminatedAt.getTime() + 10_000);
  const members = [
    { instanceId: 'i-a2', member: 'etcd-0', status: status(true, false, after) }, // the replacement
    { instanceId: 'i-b', member: 'etcd-1', status: status(true, true, after) },
    { instanceId: 'i-c', member: 'etcd-2', status: status(true, false, before) },
  ];
  // without the bound the stale report of etcd-2 passes, as it did before
  expect(quorumGate(members, 'i-b', now)).toBeUndefined();
  expect(quorumGate(members, 'i-b', now, { notBefore: terminatedAt })).toBe(
    `etcd member not healthy: etcd-2 (i-c): health report from ${before.toISOString()}, not after the previous termination at ${terminatedAt.toISOString()}`,
  );
  expect(staleReports(members, now, { notBefore: terminatedAt })).toEqual([
    `etcd-2 (i-c): health report from ${before.toISOString()}, not after the previous termination at ${terminatedAt.toISOString()}`,
  ]);
  // a tighter age bound refuses the same report on its age
  expect(quorumGate(members, 'i-b', now, { maxAgeS: 40 })).toBe(
    'etcd member not healthy: etcd-2 (i-c): health report 50 s old',
  );
  const fresh = members.map((m) => ({ ...m, status: status(true, m.instanceId === 'i-b', after) }));
  expect(quorumGate(fresh, 'i-b', now, { notBefore: terminatedAt })).toBeUndefined();
});

test('drainNode: leaves DaemonSet and mirror pods, names the PDB on the first refusal, times out with the blocked pods', async () => {
  const pod = (name: string, o: Partial<PodInfo> = {}): PodInfo => ({
    namespace: 'web',
    name,
    nodeName: 'w1',
    phase: 'Running',
    ready: true,
    priorityClassName: null,
    mirror: false,
    daemonSet: false,
    labels: {},
    image: null,
    ...o,
  });
  let pods = [pod('a'), pod('ds', { daemonSet: true }), pod('m', { mirror: true }), pod('guarded')];
  const evicted: string[] = [];
  const kube = {
    listPods: async () => pods,
    evict: async (_ns: string, name: string) => {
      if (name === 'guarded') return { evicted: false as const, pdb: 'web-pdb', message: 'needs 1' };
      evicted.push(name);
      pods = pods.filter((p) => p.name !== name);
      return { evicted: true as const };
    },
  } as unknown as KubeApi;
  let t = 0;
  const blocked: string[] = [];
  const r = await drainNode(kube, 'w1', {
    timeoutS: 20,
    retryS: 5,
    now: () => t,
    sleep: async (ms) => {
      t += ms;
    },
    onBlocked: (b) => blocked.push(`${b.pod} ${b.pdb} @${t}`),
  });
  expect(evicted).toEqual(['a']);
  expect(blocked).toEqual(['web/guarded web-pdb @0']);
  expect(r).toMatchObject({ drained: false, blocked: [{ pod: 'web/guarded', pdb: 'web-pdb' }] });
  pods = pods.filter((p) => p.name !== 'guarded');
  expect(await drainNode(kube, 'w1', { timeoutS: 20 })).toEqual({ drained: true, evicted: [] });
});
