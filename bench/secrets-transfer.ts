/**
 * Benchmark: publish and fetch of 300 files of ~4 KB through the bucket protocol, side
 * by side in the same run with the awscli doing the same transfer against the same local
 * AWS (`aws s3 sync --sse aws:kms` up, `aws s3 cp --recursive` down), plus a republish
 * with nothing changed. Prints wall times, ratios and client-side request counts.
 *
 *   npm run build && node dist/bench/secrets-transfer.js [files=300] [bytes=4096]
 *
 * KMS requests are counted on the client: ours go through KmsKeyService; the awscli makes
 * none itself (with SSE-KMS, S3 calls KMS server-side per object unless bucket keys are on;
 * the local AWS only echoes SSE-KMS, so that server-side cost is not visible here).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { bootstrap } from '../src/aws/bootstrap.js';
import { AwsClients } from '../src/aws/clients.js';
import { bootstrapNames } from '../src/config/topology.js';
import { Keyring, KmsKeyService } from '../src/secrets/keyring.js';
import { readLayerDir } from '../src/secrets/local.js';
import { SecretStore } from '../src/secrets/store.js';
import { startMoto } from '../test/helpers/moto.js';

const run = promisify(execFile);
const FILES = Number(process.argv[2] ?? 300);
const BYTES = Number(process.argv[3] ?? 4096);
const ENV = 'bench';

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
}

async function main(): Promise<void> {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const { moto, proc } = await startMoto();
  Object.assign(process.env, moto.env);
  const work = await mkdtemp(path.join(os.tmpdir(), 'bench-secrets-'));
  try {
    const src = path.join(work, 'secrets');
    for (let i = 0; i < FILES; i++) {
      const f = path.join(src, 'secure', 'files', `d${i % 10}`, `f${i}.bin`);
      await mkdir(path.dirname(f), { recursive: true });
      await writeFile(f, randomBytes(BYTES), { mode: 0o600 });
    }
    const aws = new AwsClients({ region: 'eu-west-1', endpoint: moto.endpoint });
    const names = bootstrapNames({ name: ENV, region: 'eu-west-1' }, (await aws.identity()).account);
    const boot = await bootstrap(aws, names, ENV);
    const newStore = () => {
      const keys = new KmsKeyService(awsKms, boot.kmsKeyArn);
      return {
        keys,
        store: new SecretStore({
          s3: awsS3,
          keyring: new Keyring(keys, ENV),
          bucket: names.secretsBucket,
          environment: ENV,
          kmsKeyId: boot.kmsKeyArn,
        }),
      };
    };
    const awsKms = await aws.kms();
    const awsS3 = await aws.s3();

    // ours: publish (reading the local files included), republish unchanged, fetch
    const p = newStore();
    const [, publishS] = await timed(async () =>
      p.store.publish('secure', await readLayerDir(src, 'secure')),
    );
    const r = newStore();
    const [again, republishS] = await timed(async () =>
      r.store.publish('secure', await readLayerDir(src, 'secure')),
    );
    const f = newStore();
    const [, fetchS] = await timed(async () => {
      const snap = await f.store.readIndex('secure');
      if (!snap || snap === 'not-modified') throw new Error('no index');
      const data = await f.store.fetchAll('secure', snap.index);
      const out = path.join(work, 'fetched');
      await Promise.all(
        [...data].map(async ([rel, bytes]) => {
          const t = path.join(out, rel);
          await mkdir(path.dirname(t), { recursive: true });
          await writeFile(t, bytes, { mode: 0o600 });
        }),
      );
    });

    // the awscli, same transfer, same endpoint
    const cliEnv = { ...process.env, ...moto.env, AWS_DEFAULT_REGION: 'eu-west-1' };
    const aw = (args: string[]) =>
      run('aws', ['--endpoint-url', moto.endpoint, ...args], { env: cliEnv, maxBuffer: 1 << 26 });
    const [, cliUpS] = await timed(() =>
      aw([
        's3',
        'sync',
        '--only-show-errors',
        path.join(src, 'secure'),
        `s3://${names.secretsBucket}/awscli/`,
        '--sse',
        'aws:kms',
        '--sse-kms-key-id',
        boot.kmsKeyArn,
      ]),
    );
    const [, cliResyncS] = await timed(() =>
      aw([
        's3',
        'sync',
        '--only-show-errors',
        path.join(src, 'secure'),
        `s3://${names.secretsBucket}/awscli/`,
        '--sse',
        'aws:kms',
        '--sse-kms-key-id',
        boot.kmsKeyArn,
      ]),
    );
    const [, cliDownS] = await timed(() =>
      aw([
        's3',
        'cp',
        '--only-show-errors',
        '--recursive',
        `s3://${names.secretsBucket}/awscli/`,
        path.join(work, 'cli-fetched'),
      ]),
    );

    const row = (what: string, ours: number, cli: number, extra: string) =>
      `${what.padEnd(22)} ${ours.toFixed(2).padStart(7)} s  ${cli.toFixed(2).padStart(7)} s  ${(ours / cli).toFixed(2).padStart(6)}  ${extra}`;
    console.log(`\n${FILES} files x ${BYTES} bytes, local AWS ${moto.endpoint}, node ${process.version}`);
    console.log(
      `${'operation'.padEnd(22)} ${'ours'.padStart(9)}  ${'awscli'.padStart(9)}  ${'ratio'.padStart(6)}  requests (ours)`,
    );
    console.log(row('publish', publishS, cliUpS, `${p.store.puts} PutObject, ${p.keys.requests} KMS`));
    console.log(
      row('republish, unchanged', republishS, cliResyncS, `${again.puts} PutObject, ${r.keys.requests} KMS`),
    );
    console.log(row('fetch', fetchS, cliDownS, `${f.store.gets} GetObject, ${f.keys.requests} KMS`));
    console.log('awscli KMS requests (client side): 0 — S3 makes them server-side for SSE-KMS\n');
    aws.destroy();
  } finally {
    await proc.stop();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
