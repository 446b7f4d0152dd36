/**
 * Files the toolkit reads that are not regular files (issue 11, items 10 and 11): a FIFO
 * would block a read forever, a directory fails with a bare EISDIR. Each is refused at once
 * with exit 2, naming the file.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadEnvironment } from '../../src/config/load.js';
import { ExitCode, UserError } from '../../src/errors.js';
import { readRegularFile } from '../../src/fsutil.js';
import { setLogSink } from '../../src/log.js';
import { ensurePki, type PkiPlan } from '../../src/secrets/pki/index.js';

const plan: PkiPlan = {
  environment: 'unit-env',
  clusterDomain: 'cluster.local',
  kubernetesServiceIp: '10.32.0.1',
  kubeapiInternalName: 'kube.unit-env.internal',
  kubeapiPublicName: 'kube-unit-env.example.com',
  etcdMembers: [0, 1, 2].map((i) => ({
    name: `etcd-${i}`,
    ip: `10.80.1${i}.10`,
    dnsName: `etcd-${i}.unit-env.internal`,
  })),
};

let root: string;
let restoreLog: () => void;
beforeAll(() => {
  restoreLog = setLogSink(() => {});
  root = mkdtempSync(path.join(os.tmpdir(), 'kp-hostile-files-'));
});
afterAll(() => {
  restoreLog();
  rmSync(root, { recursive: true, force: true });
});

/** Resolves within `ms`, or rejects: a hang is a failure, not a stuck test run. */
function within<T>(p: Promise<T>, ms = 5000): Promise<T> {
  return Promise.race([
    p,
    new Promise<T>((_, reject) =>
      setTimeout(() => reject(new Error(`still blocked after ${ms} ms`)), ms).unref(),
    ),
  ]);
}

test('readRegularFile refuses a FIFO at once and names it', async () => {
  const fifo = path.join(root, 'pipe');
  execFileSync('mkfifo', [fifo]);
  const e = await within(readRegularFile(fifo)).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  expect((e as Error).message).toMatch(/pipe: is a FIFO \(named pipe\), expected a regular file/);
});

test('an environment file that is a FIFO is refused (exit 2), not read forever', async () => {
  const dir = path.join(root, 'environments');
  mkdirSync(dir);
  execFileSync('mkfifo', [path.join(dir, 'x.env')]);
  const e = await within(loadEnvironment('x', dir)).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  expect((e as UserError).exitCode).toBe(ExitCode.usage);
  expect((e as Error).message).toMatch(/x\.env: is a FIFO/);
});

test('a FIFO at a PKI file path (bootstrap-token.csv) is refused, not read forever', async () => {
  const secrets = path.join(root, 'pki-fifo');
  mkdirSync(path.join(secrets, 'secure'), { recursive: true, mode: 0o700 });
  execFileSync('mkfifo', [path.join(secrets, 'secure', 'bootstrap-token.csv')]);
  const e = await within(ensurePki(secrets, plan), 60_000).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  expect((e as Error).message).toMatch(/secure\/bootstrap-token\.csv: is a FIFO/);
});

test('a directory at a PKI file path is refused naming the file, not a bare EISDIR', async () => {
  const secrets = path.join(root, 'pki-dir');
  mkdirSync(path.join(secrets, 'secure', 'pki', 'ca.crt'), { recursive: true, mode: 0o700 });
  const e = await within(ensurePki(secrets, plan), 60_000).catch((x: unknown) => x);
  expect(e).toBeInstanceOf(UserError);
  expect((e as Error).message).toMatch(/secure\/pki\/ca\.crt: is a directory, expected a regular file/);
});
