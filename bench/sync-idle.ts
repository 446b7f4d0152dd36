/**
 * manifest-sync idle cost (issue 5, item 7): with nothing published for several minutes,
 * how many requests a minute the agent makes (S3 GET/PUT, KMS), and its peak RSS. The agent
 * is the single-file bundle nodes run, in its default configuration (--layer secure,
 * --interval 1, --heartbeat 60), talking to the local AWS through a counting proxy on
 * 127.0.0.1, so every request it sends is counted.
 *
 *   node dist/bench/sync-idle.js [--minutes 3] [--layers secure]
 *
 * Targets (issue 5): 0 KMS calls, ≤ 60 requests a minute, RSS ≤ 80 MB.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startMoto } from '../test/helpers/moto.js';
import {
  Agent,
  CountingProxy,
  file,
  peakRssMiB,
  pod,
  readOrUndefined,
  setupEnv,
  tempDir,
  unitNodeFlags,
  waitFor,
} from '../test/helpers/sync-harness.js';

const { values } = parseArgs({
  options: { minutes: { type: 'string', default: '3' }, layers: { type: 'string', default: 'secure' } },
});
const minutes = Number(values.minutes);
const layers = values.layers.split(',');

const { moto, proc } = await startMoto();
Object.assign(process.env, moto.env);
const nodeFlags = await unitNodeFlags(); // as the systemd unit runs it
const env = await setupEnv(moto.endpoint, 'bench-idle');
const proxy = new CountingProxy(moto.endpoint);
await proxy.start();
const base = await tempDir('bench-idle-');
const agents: Agent[] = [];
try {
  for (const layer of layers) {
    await env.store.publish(layer, [
      file(`manifests/${layer}-pod.yaml`, pod(`${layer}-pod`)),
      file('pki/ca.crt', 'CA', 0o644),
    ]);
  }
  for (const layer of layers) {
    const dest = path.join(base, layer, 'manifests');
    await mkdir(dest, { recursive: true });
    agents.push(
      new Agent({
        env,
        endpoint: proxy.endpoint,
        childEnv: moto.env,
        nodeId: 'bench-node',
        dest,
        root: path.join(base, layer, 'kubernetes'),
        layer,
        bundle: true,
        nodeFlags,
        logFile: path.join(base, `${layer}.log`),
      }),
    );
  }
  for (const layer of layers) {
    await waitFor(
      async () =>
        (await readOrUndefined(path.join(base, layer, 'manifests', `${layer}-pod.yaml`))) !== undefined,
      30_000,
    );
  }
  // let the start-up status reports go out, then count from a clean slate
  await new Promise((r) => setTimeout(r, 3000));
  const start = proxy.snapshot();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, minutes * 60_000));
  const end = proxy.snapshot();
  const elapsedMin = (performance.now() - t0) / 60_000;
  const rss = await Promise.all(agents.map((a) => peakRssMiB(a.pid)));
  const per = (k: keyof typeof end) => ((end[k] - start[k]) / elapsedMin).toFixed(1);
  process.stdout.write(
    [
      `manifest-sync idle cost over ${elapsedMin.toFixed(2)} min (${layers.length} agent(s): ${layers.join(', ')}; --interval 1, --heartbeat 60)`,
      `  requests/min, all agents: ${per('total')}   (S3 GET ${per('s3Get')}, S3 PUT ${per('s3Put')}, other S3 ${per('s3Other')}, KMS ${per('kms')})   target <= 60 per agent`,
      `  KMS calls while idle: ${end.kms - start.kms}   (target 0; ${end.kms} since start, incl. the first decrypt of each layer's data key)`,
      `  peak RSS per agent: ${rss.map((r) => `${r.toFixed(1)} MiB`).join(', ')}   (target <= 80 MB)`,
      '',
    ].join('\n'),
  );
} finally {
  await Promise.all(agents.map((a) => a.stop()));
  await proxy.stop();
  env.aws.destroy();
  await proc.stop();
}
