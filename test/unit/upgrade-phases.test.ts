import { ConflictError } from '../../src/errors.js';
import {
  PHASES,
  PreflightError,
  remainingPhases,
  runUpgrade,
  type UpgradeDeps,
  type UpgradeJournal,
} from '../../src/upgrade/phases.js';
import type { ClusterVersions } from '../../src/upgrade/skew.js';

/** A fake cluster: records every call in order; versions move as the phases move them. */
function fakeCluster(opts: { failValidateAt?: number; versions?: Partial<ClusterVersions> } = {}) {
  const calls: string[] = [];
  const journals: (UpgradeJournal | null)[] = [];
  let stored: UpgradeJournal | null = null;
  let validations = 0;
  const v: ClusterVersions = {
    apiServers: ['v1.33.5', 'v1.33.5', 'v1.33.5'],
    controllerManagers: ['v1.33.5'],
    schedulers: ['v1.33.5'],
    kubelets: ['v1.33.5'],
    etcdMembers: ['v3.5.26', 'v3.5.26', 'v3.5.26'],
    ...opts.versions,
  };
  const deps: UpgradeDeps = {
    versions: async () => structuredClone(v),
    loadJournal: async () => structuredClone(stored),
    saveJournal: async (j) => {
      stored = structuredClone(j);
      journals.push(stored);
    },
    snapshot: async () => {
      calls.push('snapshot');
      return 'backups/etcd/20261201T000000Z-etcd-a.db';
    },
    rolloutControlPlane: async (components, t) => {
      calls.push(`rollout ${components.join('+')}`);
      if (components.includes('etcd')) v.etcdMembers = v.etcdMembers.map(() => t.etcd);
      if (components.includes('kube-apiserver')) v.apiServers = v.apiServers.map(() => t.kubernetes);
      if (components.includes('kube-scheduler')) {
        // never newer than any API server: the runner moves them only after every API server
        expect(v.apiServers.every((a) => a === t.kubernetes)).toBe(true);
        v.schedulers = [t.kubernetes];
        v.controllerManagers = [t.kubernetes];
      }
    },
    rollWorkers: async (t) => {
      calls.push('roll compute');
      v.kubelets = [t.kubernetes];
    },
    validate: async () => {
      validations++;
      calls.push('validate');
      return validations === opts.failValidateAt
        ? { passed: false, failures: ['node ip-10-80-20-5 NotReady'] }
        : { passed: true, failures: [] };
    },
    log: () => {},
  };
  return { deps, calls, journals, stored: () => stored, versions: v };
}

const target = { kubernetes: 'v1.34.2', etcd: 'v3.6.4' };

test('the phases run in the skew policy’s order with validate between them, each recorded', async () => {
  const c = fakeCluster();
  const r = await runUpgrade(c.deps, target);
  expect(c.calls).toEqual([
    'snapshot',
    'rollout etcd',
    'rollout kube-apiserver',
    'validate',
    'rollout kube-controller-manager+kube-scheduler',
    'validate',
    'roll compute',
    'validate',
  ]);
  expect(r.ran).toEqual([...PHASES]);
  expect(c.stored()).toEqual({ target, done: [...PHASES], started: null });
  // each phase was recorded as started before it ran, then as done
  const startedOrder = c.journals.filter((j) => j?.started).map((j) => j!.started);
  expect(startedOrder).toEqual([...PHASES]);
});

test('etcd already at the target: no etcd rollout', async () => {
  const c = fakeCluster({ versions: { etcdMembers: ['v3.6.4'] } });
  await runUpgrade(c.deps, target);
  expect(c.calls).not.toContain('rollout etcd');
});

test('preflight refuses with the rule named; nothing changes and no journal is left', async () => {
  const c = fakeCluster({ versions: { etcdMembers: ['v3.5.20', 'v3.5.26', 'v3.5.26'] } });
  const err = await runUpgrade(c.deps, target).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(PreflightError);
  expect((err as PreflightError).exitCode).toBe(2);
  expect((err as Error).message).toContain('[etcd-3.6-needs-3.5.26]');
  expect(c.calls).toEqual([]);
  expect(c.stored()).toBeNull();
});

test('a failed validate stops the upgrade at that phase; a rerun resumes there and skips what was done', async () => {
  const c = fakeCluster({ failValidateAt: 1 });
  await expect(runUpgrade(c.deps, target)).rejects.toThrow(
    /stopped at validate-apiservers: node ip-10-80-20-5 NotReady/,
  );
  expect(c.stored()).toMatchObject({
    done: ['preflight', 'snapshot', 'etcd', 'apiservers'],
    started: 'validate-apiservers',
  });
  c.calls.length = 0;
  const r = await runUpgrade(c.deps, target);
  expect(r.resumed).toBe(true);
  expect(r.skipped).toEqual(['preflight', 'snapshot', 'etcd', 'apiservers']);
  expect(c.calls).toEqual([
    'validate',
    'rollout kube-controller-manager+kube-scheduler',
    'validate',
    'roll compute',
    'validate',
  ]);
});

test('an unfinished upgrade to another target blocks a new one', () => {
  const j: UpgradeJournal = { target, done: ['preflight'], started: 'snapshot' };
  expect(() => remainingPhases(j, { kubernetes: 'v1.34.3', etcd: 'v3.6.4' })).toThrow(ConflictError);
  expect(remainingPhases(j, target)).toEqual(PHASES.slice(1));
  expect(
    remainingPhases({ target, done: [...PHASES], started: null }, { kubernetes: 'v1.35.0', etcd: 'v3.6.5' }),
  ).toEqual([...PHASES]);
});
