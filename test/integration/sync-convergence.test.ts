import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { RunInstancesCommand } from '@aws-sdk/client-ec2';
import { listInstances } from '../../src/aws/inventory.js';
import { syncStatusCommand } from '../../src/commands/sync-status.js';
import { openEnvironment } from '../../src/context/environment.js';
import { TimeoutError } from '../../src/errors.js';
import { formatConvergence, waitForConvergence } from '../../src/fleet/convergence.js';
import { cli, sharedEnvFile, workspace } from '../helpers/cli.js';
import { useMoto } from '../helpers/moto.js';
import {
  Agent,
  file,
  pod,
  readOrUndefined,
  type SyncEnv,
  setupEnv,
  tempDir,
} from '../helpers/sync-harness.js';

/**
 * The acceptance of issue 5 for convergence: an environment with three masters in the local
 * AWS, one manifest-sync agent per master (its instance id as --node-id, its own
 * directories); `run --wait` (waitForConvergence) reports 3/3, and with one agent stopped
 * 2/3, naming the missing node when it times out. `sync-status --wait` says the same.
 */

const moto = useMoto();
const ENV = 'conv-test';
let env: SyncEnv;
const agents: Agent[] = [];

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.kill()));
  env?.aws.destroy();
});

async function launchMasters(n: number): Promise<string[]> {
  const r = await (await env.aws.ec2()).send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      InstanceType: 't3.medium',
      MinCount: n,
      MaxCount: n,
      TagSpecifications: [
        {
          ResourceType: 'instance',
          Tags: [
            { Key: 'Name', Value: `${ENV}-secure` },
            { Key: 'Environment', Value: ENV },
            { Key: 'Layer', Value: 'secure' },
          ],
        },
      ],
    }),
  );
  return r.Instances!.map((i) => i.InstanceId!).sort();
}

/** One manifest-sync agent per master: its instance id as --node-id, its own directories under base. */
async function startAgents(ids: string[], base: string): Promise<void> {
  for (const id of ids) {
    const dest = path.join(base, id, 'manifests');
    await mkdir(dest, { recursive: true });
    agents.push(
      new Agent({
        env,
        endpoint: moto.endpoint,
        childEnv: moto.env,
        nodeId: id,
        dest,
        root: path.join(base, id, 'kubernetes'),
        logFile: path.join(base, `${id}.log`),
      }),
    );
  }
}

/** Runs `sync-status` in-process (the lead wires it into the CLI) and captures stdout. */
async function syncStatus(args: {
  wait?: boolean;
  timeout?: number;
  json?: boolean;
}): Promise<{ out: string; error?: Error }> {
  const ws = workspace({ [ENV]: sharedEnvFile() });
  const saved = process.env.PLATFORM_WORKDIR;
  process.env.PLATFORM_WORKDIR = ws.dir;
  const chunks: string[] = [];
  const context = { openEnvironment, stdout: { write: (text: string) => void chunks.push(text) } };
  try {
    await syncStatusCommand({ env: ENV, layer: ['secure'], timeout: args.timeout ?? 120, ...args }, context);
    return { out: chunks.join('') };
  } catch (e) {
    return { out: chunks.join(''), error: e as Error };
  } finally {
    if (saved === undefined) delete process.env.PLATFORM_WORKDIR;
    else process.env.PLATFORM_WORKDIR = saved;
  }
}

test('three masters converge 3/3; with one agent stopped, 2/3 names the missing node', async () => {
  env = await setupEnv(moto.endpoint, ENV);
  const launched = await launchMasters(3);
  const rows = await listInstances(env.aws, ENV);
  // in inventory order (name, then private IP), as sync-status lists them
  const ids = rows.filter((r) => r.layer === 'secure').map((r) => r.instanceId);
  expect([...ids].sort()).toEqual(launched);

  const base = await tempDir('conv-');
  const published = await env.store.publish('secure', [
    file('manifests/etcd.yaml', pod('etcd')),
    file('pki/ca.crt', 'CA'),
  ]);
  await startAgents(ids, base);

  const r1 = await waitForConvergence({
    store: env.store,
    instances: rows,
    layer: 'secure',
    generation: published.generation,
    timeoutS: 60,
  });
  expect(r1).toMatchObject({ converged: 3, total: 3, missing: [] });
  expect(formatConvergence(r1)).toMatch(/^masters converged 3\/3 in \d+\.\d s \(generation 1\)$/);
  for (const id of ids) {
    expect(await readOrUndefined(path.join(base, id, 'manifests', 'etcd.yaml'))).toBe(pod('etcd'));
    expect(await readOrUndefined(path.join(base, id, 'kubernetes', 'pki', 'ca.crt'))).toBe('CA');
  }
  const status = await syncStatus({ json: true });
  expect(status.error).toBeUndefined();
  expect(JSON.parse(status.out)).toEqual(
    ids.map((id) =>
      expect.objectContaining({
        layer: 'secure',
        instanceId: id,
        generation: 1,
        current: 1,
        error: null,
        converged: true,
      }),
    ),
  );

  // one agent stops (SIGTERM: it exits 0); the next publish reaches only the other two
  const stopped = agents[1]!;
  expect(await stopped.stop()).toEqual({ code: 0, signal: null });
  const second = await env.store.publish('secure', [
    file('manifests/etcd.yaml', pod('etcd', '    args: ["--v=2"]\n')),
  ]);
  expect(second.generation).toBe(2);
  const r2 = await waitForConvergence({
    store: env.store,
    instances: rows,
    layer: 'secure',
    generation: 2,
    timeoutS: 6,
  });
  expect(r2.converged).toBe(2);
  expect(r2.total).toBe(3);
  expect(r2.elapsedS).toBeGreaterThanOrEqual(6);
  expect(r2.missing).toEqual([
    {
      instanceId: ids[1],
      name: `${ENV}-secure`,
      reason: expect.stringMatching(/^at generation 1 \(last report \d+ s ago\)$/),
    },
  ]);
  expect(formatConvergence(r2)).toContain(`masters converged 2/3 (timed out after`);
  expect(formatConvergence(r2)).toContain(`missing: ${ids[1]} (${ENV}-secure): at generation 1`);
  // the other two applied it; the stopped one kept generation 1
  expect(await readOrUndefined(path.join(base, ids[0]!, 'manifests', 'etcd.yaml'))).toContain('--v=2');
  expect(await readOrUndefined(path.join(base, ids[1]!, 'manifests', 'etcd.yaml'))).toBe(pod('etcd'));

  const waited = await syncStatus({ wait: true, timeout: 2 });
  expect(waited.error).toBeInstanceOf(TimeoutError);
  expect(waited.error?.message).toContain(`masters converged 2/3`);
  expect(waited.error?.message).toContain(`${ids[1]} (${ENV}-secure): at generation 1`);
  expect(waited.out).toMatch(new RegExp(`${ids[1]}.*1/2`));
  expect(waited.out).toMatch(new RegExp(`${ids[0]}.*2/2`));
});

test('run --wait (the CLI): 3/3 converged; with one agent stopped it times out, exit 5, naming the node', async () => {
  env = await setupEnv(moto.endpoint, ENV);
  await launchMasters(3);
  const ids = (await listInstances(env.aws, ENV))
    .filter((r) => r.layer === 'secure')
    .map((r) => r.instanceId);
  const base = await tempDir('conv-run-');
  await startAgents(ids, base);

  const ws = workspace({ [ENV]: sharedEnvFile() });
  const vars = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  const r1 = await cli(
    ['run', '-e', ENV, '--skip-terraform', '--yes', '--confirm', ENV, '--wait', '--wait-timeout', '60'],
    vars,
  );
  expect([r1.code, r1.code ? r1.stderr : '']).toEqual([0, '']);
  expect(r1.stderr).toMatch(/masters converged 3\/3 in \d+\.\d s \(generation 1\)/);
  // the real control-plane manifests landed on every master
  for (const id of ids) {
    expect(await readOrUndefined(path.join(base, id, 'manifests', 'kube-apiserver.yaml'))).toBe(
      await readOrUndefined(path.join(ws.dir, 'secrets', ENV, 'secure', 'manifests', 'kube-apiserver.yaml')),
    );
  }

  expect(await agents[2]!.stop()).toEqual({ code: 0, signal: null });
  await writeFile(path.join(ws.dir, 'secrets', ENV, 'secure', 'motd'), 'generation two\n', { mode: 0o600 });
  const r2 = await cli(
    // all at once: this is about --wait's convergence report, not the staged rollout
    // (test/integration/run-rollout.test.ts)
    [
      'run',
      '-e',
      ENV,
      '--skip-terraform',
      '--yes',
      '--rollout',
      'all-at-once',
      '--wait',
      '--wait-timeout',
      '5',
    ],
    vars,
  );
  expect(r2.code).toBe(5);
  expect(r2.stderr).toMatch(/masters converged 2\/3 \(timed out after/);
  expect(r2.stderr).toContain(`${ids[2]} (${ENV}-secure): at generation 1`);
});
