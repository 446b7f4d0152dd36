/**
 * manifest-sync propagation latency (issue 5, item 7): the time from "publish done" (the
 * index is written) to "the new file is in --dest", over N changes (default 50), with the
 * agent at its default interval (1 s), against the local AWS (moto_server on 127.0.0.1).
 * The agent is the single-file bundle nodes run (npm run build:agent).
 *
 *   node dist/bench/sync-propagation.js [--changes 50] [--interval 1]
 *
 * Publishes are spaced by a random 0.3–1.7 s so they land at every phase of the poll cycle.
 * Target (issue 5): p50 ≤ 1 s and p99 ≤ 2 s at the default interval.
 */
import { randomInt } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startMoto } from '../test/helpers/moto.js';
import {
  Agent,
  file,
  percentile,
  pod,
  readOrUndefined,
  setupEnv,
  tempDir,
  unitNodeFlags,
  waitFor,
} from '../test/helpers/sync-harness.js';

const { values } = parseArgs({
  options: { changes: { type: 'string', default: '50' }, interval: { type: 'string', default: '1' } },
});
const changes = Number(values.changes);
const interval = Number(values.interval);

const { moto, proc } = await startMoto();
Object.assign(process.env, moto.env);
const nodeFlags = await unitNodeFlags(); // as the systemd unit runs it
const env = await setupEnv(moto.endpoint, 'bench-prop');
const base = await tempDir('bench-prop-');
const dest = path.join(base, 'manifests');
await mkdir(dest);
const agent = new Agent({
  env,
  endpoint: moto.endpoint,
  childEnv: moto.env,
  nodeId: 'bench-node',
  dest,
  interval,
  bundle: true,
  nodeFlags,
  logFile: path.join(base, 'agent.log'),
});
try {
  const target = path.join(dest, 'kube-apiserver.yaml');
  const version = (i: number) => pod('kube-apiserver', `    args: ["--bench-change=${i}"]\n`);
  await env.store.publish('secure', [file('manifests/kube-apiserver.yaml', version(0))]);
  await waitFor(async () => (await readOrUndefined(target)) === version(0), 30_000);

  const latencies: number[] = [];
  for (let i = 1; i <= changes; i++) {
    await new Promise((r) => setTimeout(r, randomInt(300, 1700)));
    await env.store.publish('secure', [file('manifests/kube-apiserver.yaml', version(i))]);
    const published = performance.now();
    await waitFor(async () => (await readOrUndefined(target)) === version(i), 30_000, 2);
    latencies.push((performance.now() - published) / 1000);
  }
  const f = (s: number) => `${s.toFixed(3)} s`;
  process.stdout.write(
    [
      `manifest-sync propagation, publish done -> file in --dest (${changes} changes, --interval ${interval} s, local AWS)`,
      `  p50  ${f(percentile(latencies, 50))}   (target <= 1 s)`,
      `  p99  ${f(percentile(latencies, 99))}   (target <= 2 s)`,
      `  mean ${f(latencies.reduce((a, b) => a + b, 0) / latencies.length)}   min ${f(Math.min(...latencies))}   max ${f(Math.max(...latencies))}`,
      '',
    ].join('\n'),
  );
} finally {
  await agent.stop();
  env.aws.destroy();
  await proc.stop();
}
