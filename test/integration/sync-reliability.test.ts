import { randomBytes, randomInt } from 'node:crypto';
import { mkdir, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { validateStaticPod } from '../../src/agent/validate.js';
import type { BackgroundProcess } from '../../src/exec/index.js';
import { formatConvergence, waitForConvergence } from '../../src/fleet/convergence.js';
import { sha256 } from '../../src/secrets/envelope.js';
import { type NodeStatus, parseStatus } from '../../src/secrets/status.js';
import type { LocalFile } from '../../src/secrets/store.js';
import { type Moto, startMoto } from '../helpers/moto.js';
import {
  Agent,
  file,
  pod,
  readOrUndefined,
  type SyncEnv,
  setupEnv,
  tempDir,
  waitFor,
} from '../helpers/sync-harness.js';

/**
 * Reliability of the manifest-sync agent (issue 5, item 8), scaled to run in about two
 * minutes: SIGKILL at random moments during 200 updates, the local AWS stopped for 30 s, a
 * tampered and a rolled-back index, a publish with one invalid manifest. The agents are the
 * built CLI as child processes; the local AWS is a real moto_server (its process is ours, so
 * it can be SIGSTOPped: SIGSTOP/SIGCONT keeps its state).
 */

let moto: Moto;
let motoProc: BackgroundProcess;
let env: SyncEnv;
const agents: Agent[] = [];

const savedEnv: Record<string, string | undefined> = {};

beforeAll(async () => {
  const started = await startMoto();
  moto = started.moto;
  motoProc = started.proc;
  for (const [k, v] of Object.entries(moto.env)) {
    savedEnv[k] = process.env[k];
    process.env[k] = v;
  }
}, 60_000);

afterAll(async () => {
  await motoProc?.stop();
  for (const [k, v] of Object.entries(savedEnv)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

beforeEach(async () => {
  await moto.reset();
  env = await setupEnv(moto.endpoint, 'rel-test');
});

afterEach(async () => {
  await Promise.all(agents.splice(0).map((a) => a.kill()));
  env.aws.destroy();
});

async function dirs(): Promise<{ base: string; dest: string }> {
  const base = await tempDir('rel-');
  const dest = path.join(base, 'manifests');
  await mkdir(dest);
  return { base, dest };
}

function startAgent(base: string, dest: string, opts: { interval?: number; nodeId?: string } = {}): Agent {
  const a = new Agent({
    env,
    endpoint: moto.endpoint,
    childEnv: moto.env,
    nodeId: opts.nodeId ?? 'node-1',
    dest,
    root: path.join(base, 'kubernetes'),
    interval: opts.interval ?? 1,
    logFile: path.join(base, 'agent.log'),
  });
  agents.push(a);
  return a;
}

async function status(nodeId = 'node-1'): Promise<NodeStatus | undefined> {
  const all = await env.store.readStatuses('secure');
  return parseStatus(all.find((s) => s.node === nodeId)?.json);
}

/** Every file kubelet would read from `dest` (not dot-files): parses as a valid static pod. */
async function assertAllValid(dest: string): Promise<string[]> {
  const names = (await readdir(dest)).filter((n) => !n.startsWith('.'));
  for (const n of names) validateStaticPod(await readFile(path.join(dest, n)), n);
  return names;
}

const blobPod = (name: string, kb: number) =>
  pod(name).replace(
    '  namespace: kube-system\n',
    `  namespace: kube-system\n  annotations:\n    blob: "${randomBytes(kb * 512).toString('hex')}"\n`,
  );

test('SIGKILL at random moments during 200 updates never leaves a partial or invalid file, and it converges', async () => {
  const { base, dest } = await dirs();
  const names = ['etcd', 'kube-apiserver', 'kube-scheduler'];
  const publishedDigests = new Map<string, Set<string>>(names.map((n) => [`${n}.yaml`, new Set<string>()]));
  let current: LocalFile[] = names.map((n) => file(`manifests/${n}.yaml`, blobPod(n, 1)));
  for (const f of current) publishedDigests.get(path.basename(f.path))!.add(f.sha256);
  await env.store.publish('secure', current);

  let agent = startAgent(base, dest, { interval: 0.2 });
  let done = false;
  let kills = 0;
  let generation = 1;
  const publisher = (async () => {
    for (let i = 0; i < 199; i++) {
      // change one or two files, sizes 1 KiB to 256 KiB so that writes take a while
      current = current.map((f, j) =>
        j === i % 3 || j === (i * 7) % 3 ? file(f.path, blobPod(names[j]!, randomInt(1, 257))) : f,
      );
      for (const f of current) publishedDigests.get(path.basename(f.path))!.add(f.sha256);
      generation = (await env.store.publish('secure', current)).generation;
      await new Promise((r) => setTimeout(r, randomInt(0, 40)));
    }
    done = true;
  })();
  const killer = (async () => {
    while (!done) {
      await new Promise((r) => setTimeout(r, randomInt(150, 1200)));
      await agent.kill();
      kills++;
      // what kubelet sees right after the kill: only complete, valid manifests, each one a published version
      for (const n of await assertAllValid(dest)) {
        expect(publishedDigests.get(n)?.has(sha256(await readFile(path.join(dest, n))))).toBe(true);
      }
      agent = startAgent(base, dest, { interval: 0.2 });
    }
  })();
  await Promise.all([publisher, killer]);
  expect(generation).toBe(200);
  expect(kills).toBeGreaterThanOrEqual(5);

  // converges after the last restart: the last published bytes, generation 200 in its state and status
  await waitFor(async () => {
    for (const f of current) {
      const text = await readOrUndefined(path.join(dest, path.basename(f.path)));
      if (text === undefined || sha256(text) !== f.sha256) return false;
    }
    return true;
  }, 30_000);
  await waitFor(async () => (await status())?.generation === 200, 10_000);
  const state = JSON.parse(await readFile(path.join(dest, '.manifest-sync-secure.json'), 'utf8'));
  expect(state.generation).toBe(200);
  // temp files of killed writes were cleaned up by the restarts; none is left
  expect((await readdir(dest)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  await assertAllValid(dest);
  // SIGTERM once it runs: a clean exit
  await agent.started();
  expect(await agent.stop()).toEqual({ code: 0, signal: null });
  process.stderr.write(`manifest-sync survived ${kills} SIGKILLs during 200 updates\n`);
});

test('the local AWS stopped for 30 s: every file untouched, the agent recovers within 2 s of its return', async () => {
  const { base, dest } = await dirs();
  await env.store.publish('secure', [
    file('manifests/etcd.yaml', pod('etcd')),
    file('pki/ca.crt', 'CA', 0o644),
  ]);
  const agent = startAgent(base, dest); // the default interval: 1 s
  await waitFor(async () => (await status())?.generation === 1, 20_000);
  const files = [path.join(dest, 'etcd.yaml'), path.join(base, 'kubernetes', 'pki', 'ca.crt')];
  const snapshot = async () =>
    Promise.all(
      files.map(async (f) => {
        const s = await stat(f);
        return { f, ino: s.ino, mtimeMs: s.mtimeMs, mode: s.mode, text: await readFile(f, 'utf8') };
      }),
    );
  const before = await snapshot();
  const listing = (await readdir(dest)).sort();

  process.kill(motoProc.pid, 'SIGSTOP');
  let resumed = false;
  try {
    for (let s = 0; s < 30; s++) {
      await new Promise((r) => setTimeout(r, 1000));
      expect(await snapshot()).toEqual(before);
      expect((await readdir(dest)).sort()).toEqual(listing);
      expect(agent.child.exitCode).toBeNull();
    }
  } finally {
    process.kill(motoProc.pid, 'SIGCONT');
    resumed = true;
  }
  const back = Date.now();
  expect(resumed).toBe(true);
  await env.store.publish('secure', [
    file('manifests/etcd.yaml', pod('etcd', '    args: ["--v=2"]\n')),
    file('pki/ca.crt', 'CA', 0o644),
  ]);
  await waitFor(async () => (await readOrUndefined(files[0]!))?.includes('--v=2'), 10_000, 10);
  const recoveredMs = Date.now() - back;
  expect(recoveredMs).toBeLessThanOrEqual(2000);
  // the agent logs the recovery after the pass that wrote the file: wait for the line (the
  // log is the agent's stderr, read through a pipe)
  await waitFor(async () => /layer secure: recovered after \d+\.\d s/.test(await agent.log()), 5_000);
  const log = await agent.log();
  expect(log).toMatch(/error: layer secure: the bucket did not answer in time \(keeping the last good files/);
  expect(log).toMatch(/layer secure: recovered after \d+\.\d s/);
  await waitFor(async () => {
    const s = await status();
    return s?.generation === 2 && s.error === null;
  }, 5_000);
  process.stderr.write(`manifest-sync recovered ${recoveredMs} ms after the local AWS came back\n`);
});

test('a tampered or rolled-back index is refused, reported in status, and the files stay', async () => {
  const { base, dest } = await dirs();
  const s3 = await env.aws.s3();
  const indexBytes = async () =>
    Buffer.from(
      await (
        await s3.send(new GetObjectCommand({ Bucket: env.bucket, Key: 'index/secure' }))
      ).Body!.transformToByteArray(),
    );
  const putIndex = (body: Buffer) =>
    s3.send(new PutObjectCommand({ Bucket: env.bucket, Key: 'index/secure', Body: body }));

  await env.store.publish('secure', [file('manifests/etcd.yaml', pod('etcd'))]);
  const gen1 = await indexBytes();
  startAgent(base, dest, { interval: 0.2 });
  await waitFor(async () => (await status())?.generation === 1, 20_000);
  await env.store.publish('secure', [file('manifests/etcd.yaml', pod('etcd', '    args: ["--v=2"]\n'))]);
  await waitFor(async () => (await status())?.generation === 2, 10_000);
  const gen2 = await indexBytes();
  const applied = await readFile(path.join(dest, 'etcd.yaml'), 'utf8');

  // one flipped bit in the authentication tag
  const tampered = Buffer.from(gen2);
  tampered[tampered.length - 1]! ^= 1;
  await putIndex(tampered);
  const refused = await waitFor(async () => {
    const s = await status();
    return s?.error ? s : undefined;
  }, 10_000);
  expect(refused.error).toBe(
    'index/secure: authentication failed (tampered, moved from another path/layer, or from another environment)',
  );
  expect(refused.generation).toBe(2);
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toBe(applied);

  await putIndex(gen2);
  await waitFor(async () => (await status())?.error === null, 10_000);

  // an old index copied back over the current one
  await putIndex(gen1);
  const rolledBack = await waitFor(async () => {
    const s = await status();
    return s?.error ? s : undefined;
  }, 10_000);
  expect(rolledBack.error).toBe(
    'index/secure: generation 1 is older than the applied generation 2 (rollback refused)',
  );
  expect(rolledBack.generation).toBe(2);
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toBe(applied);
  // a publisher working from the rolled-back index makes a second "generation 2": refused too
  await env.store.publish('secure', [file('manifests/etcd.yaml', pod('etcd', '    args: ["--v=9"]\n'))]);
  await waitFor(async () => (await status())?.error?.includes('rewritten index refused'), 10_000);
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toBe(applied);

  // the real history back, then a normal publish: applied, the error cleared
  await putIndex(gen2);
  await env.store.publish('secure', [file('manifests/etcd.yaml', pod('etcd', '    args: ["--v=3"]\n'))]);
  await waitFor(async () => {
    const s = await status();
    return s?.generation === 3 && s.error === null;
  }, 10_000);
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toContain('--v=3');
});

test('a publish with one invalid manifest keeps its last good version, applies the rest and reports it', async () => {
  const { base, dest } = await dirs();
  await env.store.publish('secure', [
    file('manifests/etcd.yaml', pod('etcd')),
    file('manifests/kube-apiserver.yaml', pod('kube-apiserver')),
    file('manifests/kube-controller-manager.yaml', pod('kube-controller-manager')),
  ]);
  startAgent(base, dest, { interval: 0.2 });
  await waitFor(async () => (await status())?.generation === 1, 20_000);

  await env.store.publish('secure', [
    file('manifests/etcd.yaml', pod('etcd', '    imagePullPolicey: Always\n')),
    file('manifests/kube-apiserver.yaml', pod('kube-apiserver', '    args: ["--v=2"]\n')),
    file('manifests/kube-scheduler.yaml', pod('kube-scheduler')),
  ]);
  const reported = await waitFor(async () => {
    const s = await status();
    return s?.generation === 2 ? s : undefined;
  }, 10_000);
  expect(reported.error).toBeNull();
  expect(reported.fileErrors).toEqual([
    {
      path: 'manifests/etcd.yaml',
      error:
        'secure/manifests/etcd.yaml:10: spec.containers[0].imagePullPolicey: unknown field (not in core/v1 Pod v1.34.0)',
    },
  ]);
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toBe(pod('etcd'));
  expect(await readFile(path.join(dest, 'kube-apiserver.yaml'), 'utf8')).toContain('--v=2');
  expect(await readFile(path.join(dest, 'kube-scheduler.yaml'), 'utf8')).toBe(pod('kube-scheduler'));
  // nothing is deleted while a file of the generation is in error
  expect(await readOrUndefined(path.join(dest, 'kube-controller-manager.yaml'))).toBe(
    pod('kube-controller-manager'),
  );

  const node = {
    name: 'rel-test-secure',
    privateIp: null,
    publicIp: null,
    state: 'running',
    availabilityZone: 'eu-west-1a',
  };
  const instances = [{ ...node, instanceId: 'node-1', layer: 'secure' }];
  const r = await waitForConvergence({
    store: env.store,
    instances,
    layer: 'secure',
    generation: 2,
    timeoutS: 1,
  });
  expect(r.converged).toBe(0);
  expect(formatConvergence(r)).toContain(
    'missing: node-1 (rel-test-secure): generation 2 applied with errors: manifests/etcd.yaml: secure/manifests/etcd.yaml:10: spec.containers[0].imagePullPolicey: unknown field',
  );

  // the fix: applied, the dropped file removed, converged
  await env.store.publish('secure', [
    file('manifests/etcd.yaml', pod('etcd', '    imagePullPolicy: Always\n')),
    file('manifests/kube-apiserver.yaml', pod('kube-apiserver', '    args: ["--v=2"]\n')),
    file('manifests/kube-scheduler.yaml', pod('kube-scheduler')),
  ]);
  const fixed = await waitForConvergence({
    store: env.store,
    instances,
    layer: 'secure',
    generation: 3,
    timeoutS: 10,
  });
  expect(fixed).toMatchObject({ converged: 1, total: 1 });
  expect(await readFile(path.join(dest, 'etcd.yaml'), 'utf8')).toContain('imagePullPolicy: Always');
  expect(await readOrUndefined(path.join(dest, 'kube-controller-manager.yaml'))).toBeUndefined();
  expect((await status())?.fileErrors).toEqual([]);
});
