import type { InstanceRow } from '../../src/aws/inventory.js';
import { checkConvergence, formatConvergence, instancesForLayer } from '../../src/fleet/convergence.js';
import { type NodeStatus, parseStatus } from '../../src/secrets/status.js';

const row = (instanceId: string, layer: string | null, state = 'running'): InstanceRow => ({
  name: `play-${layer}`,
  privateIp: null,
  publicIp: null,
  instanceId,
  state,
  availabilityZone: 'eu-west-1a',
  layer,
});
const NOW = Date.parse('2026-01-01T00:01:00Z');
const status = (node: string, generation: number, extra: Partial<NodeStatus> = {}): NodeStatus => ({
  node,
  layer: 'secure',
  generation,
  indexDigest: 'd',
  appliedAt: '2026-01-01T00:00:00Z',
  heartbeatAt: '2026-01-01T00:00:50Z',
  error: null,
  fileErrors: [],
  ...extra,
});

test('the instances of a layer: running masters for secure, every node for common', () => {
  const rows = [
    row('i-1', 'secure'),
    row('i-2', 'secure', 'stopped'),
    row('i-3', 'compute'),
    row('i-4', 'bastion'),
  ];
  expect(instancesForLayer(rows, 'secure').map((r) => r.instanceId)).toEqual(['i-1']);
  expect(instancesForLayer(rows, 'compute').map((r) => r.instanceId)).toEqual(['i-3']);
  expect(instancesForLayer(rows, 'common').map((r) => r.instanceId)).toEqual(['i-1', 'i-3', 'i-4']);
});

test('converged = at the generation or later, without error; the others are named with why', () => {
  const masters = [
    row('i-1', 'secure'),
    row('i-2', 'secure'),
    row('i-3', 'secure'),
    row('i-4', 'secure'),
    row('i-5', 'secure'),
  ];
  const statuses = new Map([
    ['i-1', status('i-1', 4)],
    ['i-2', status('i-2', 5)],
    ['i-3', status('i-3', 3)],
    [
      'i-4',
      status('i-4', 4, {
        fileErrors: [{ path: 'manifests/etcd.yaml', error: 'x:9: spec.bogus: unknown field' }],
      }),
    ],
  ]);
  const r = checkConvergence(masters, statuses, 'secure', 4, NOW);
  expect(r.converged).toBe(2);
  expect(r.total).toBe(5);
  expect(r.missing).toEqual([
    { instanceId: 'i-3', name: 'play-secure', reason: 'at generation 3 (last report 10 s ago)' },
    {
      instanceId: 'i-4',
      name: 'play-secure',
      reason: 'generation 4 applied with errors: manifests/etcd.yaml: x:9: spec.bogus: unknown field',
    },
    { instanceId: 'i-5', name: 'play-secure', reason: 'no status reported' },
  ]);
  expect(formatConvergence({ ...r, elapsedS: 30 })).toBe(
    'masters converged 2/5 (timed out after 30.0 s, generation 4); missing: i-3 (play-secure): at generation 3 (last report 10 s ago); ' +
      'i-4 (play-secure): generation 4 applied with errors: manifests/etcd.yaml: x:9: spec.bogus: unknown field; i-5 (play-secure): no status reported',
  );
  const stuck = checkConvergence(
    masters.slice(0, 1),
    new Map([['i-1', status('i-1', 3, { error: 'index/secure: rollback refused' })]]),
    'secure',
    4,
    NOW,
  );
  expect(stuck.missing[0]!.reason).toBe(
    'at generation 3 (last report 10 s ago): index/secure: rollback refused',
  );
  const all = checkConvergence(masters.slice(0, 2), statuses, 'secure', 4, NOW);
  expect(formatConvergence({ ...all, elapsedS: 1.43 })).toBe('masters converged 2/2 in 1.4 s (generation 4)');
});

test('status reports are parsed strictly enough to trust their fields', () => {
  expect(parseStatus(status('i-1', 2))).toEqual(status('i-1', 2));
  expect(parseStatus({ node: 'i-1', generation: 'x' })).toBeUndefined();
  expect(parseStatus(undefined)).toBeUndefined();
});
