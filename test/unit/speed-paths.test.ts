/**
 * The fast paths of the operator's commands (issue 11 item 21, issue 12 item 6): many files
 * written atomically at once, and the SDK's packages loaded the way the CLI loads them.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { autoScalingSdk, credentialProvidersSdk, ec2Sdk, elbv2Sdk, stsSdk } from '../../src/aws/clients.js';
import { kmsSdk, loadSdkWithRequire, s3Sdk } from '../../src/aws/sdk.js';
import { atomicWriteAll, listFiles, TEMP_FILE_RE } from '../../src/fsutil.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kp-speed-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Every file under `root`, dot-files included (listFiles skips them). */
function everything(root: string): string[] {
  return readdirSync(root, { recursive: true, encoding: 'utf8' }).filter((f) =>
    statSync(path.join(root, f)).isFile(),
  );
}

test('atomicWriteAll writes every file with its bytes and mode, creating directories, and leaves no temp file', async () => {
  const files = Array.from({ length: 120 }, (_, i) => ({
    file: path.join(dir, 'layer', `d${i % 7}`, `f${i}.bin`),
    data: Buffer.from(`file ${i}\n`),
    mode: i % 2 ? 0o600 : 0o644,
  }));
  await atomicWriteAll(files, { dirMode: 0o700, concurrency: 8 });
  expect(await listFiles(path.join(dir, 'layer'))).toHaveLength(120);
  for (const [i, f] of files.entries()) {
    expect([i, readFileSync(f.file, 'utf8'), statSync(f.file).mode & 0o777]).toEqual([
      i,
      `file ${i}\n`,
      f.mode,
    ]);
  }
  expect(statSync(path.join(dir, 'layer', 'd3')).mode & 0o777).toBe(0o700);
  expect(everything(dir).filter((f) => TEMP_FILE_RE.test(path.basename(f)))).toEqual([]);
});

test('atomicWriteAll: a file that cannot be written fails the call with its own error after the others are done; no temp file is left', async () => {
  // a directory where a file is to go: the rename over it fails (EISDIR)
  mkdirSync(path.join(dir, 'layer', 'taken'), { recursive: true });
  const files = [
    ...Array.from({ length: 20 }, (_, i) => ({
      file: path.join(dir, 'layer', `a${i}`),
      data: 'a',
      mode: 0o600,
    })),
    { file: path.join(dir, 'layer', 'taken'), data: 'x', mode: 0o600 },
    ...Array.from({ length: 20 }, (_, i) => ({
      file: path.join(dir, 'layer', `b${i}`),
      data: 'b',
      mode: 0o600,
    })),
  ];
  await expect(atomicWriteAll(files, { concurrency: 4 })).rejects.toMatchObject({ code: 'EISDIR' });
  expect(statSync(path.join(dir, 'layer', 'taken')).isDirectory()).toBe(true);
  // the files started before the failure are complete; none is partial, no temp file stays
  for (const f of readdirSync(path.join(dir, 'layer')).filter((f) => f !== 'taken'))
    expect(readFileSync(path.join(dir, 'layer', f), 'utf8')).toMatch(/^[ab]$/);
  expect(everything(dir).filter((f) => TEMP_FILE_RE.test(path.basename(f)))).toEqual([]);
});

test('after loadSdkWithRequire, every SDK loader returns the package as require loads it, with its client', async () => {
  const req = createRequire(import.meta.url);
  const before = await s3Sdk();
  expect(typeof before.S3Client).toBe('function');
  loadSdkWithRequire();
  const loaders: [string, () => Promise<Record<string, unknown>>, string][] = [
    ['@aws-sdk/client-s3', s3Sdk, 'S3Client'],
    ['@aws-sdk/client-kms', kmsSdk, 'KMSClient'],
    ['@aws-sdk/client-ec2', ec2Sdk, 'EC2Client'],
    ['@aws-sdk/client-auto-scaling', autoScalingSdk, 'AutoScalingClient'],
    ['@aws-sdk/client-elastic-load-balancing-v2', elbv2Sdk, 'ElasticLoadBalancingV2Client'],
    ['@aws-sdk/client-sts', stsSdk, 'STSClient'],
    ['@aws-sdk/credential-providers', credentialProvidersSdk, 'fromNodeProviderChain'],
  ];
  for (const [id, load, member] of loaders) {
    const m = await load();
    expect([id, m === req(id), typeof m[member]]).toEqual([id, true, 'function']);
  }
});
