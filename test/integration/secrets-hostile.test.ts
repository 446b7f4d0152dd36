/**
 * Hostile bucket contents against a real moto_server: an index from another environment,
 * an index moved to another layer, and an index rolled back to an older version. Each is
 * rejected with a clear error and nothing local is overwritten. (Flipped bytes and objects
 * moved to another path: test/integration/bucket.test.ts and test/unit/envelope.test.ts.)
 */

import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CopyObjectCommand, ListObjectVersionsCommand } from '@aws-sdk/client-s3';
import { IntegrityError } from '../../src/errors.js';
import { sha256 } from '../../src/secrets/envelope.js';
import type { LocalFile } from '../../src/secrets/store.js';
import { cli, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment } from '../helpers/env.js';
import { useMoto } from '../helpers/moto.js';

const moto = useMoto();

function file(p: string, text: string): LocalFile {
  const content = Buffer.from(text);
  return { path: p, content, sha256: sha256(content), size: content.length, mode: 0o600 };
}

async function environment(name: string) {
  const env = await bootstrapEnvironment(moto.endpoint, name);
  return { ...env, s3: await env.aws.s3() };
}

test("another environment's index, copied into this bucket, is refused", async () => {
  const alpha = await environment('alpha');
  const beta = await environment('beta');
  await alpha.store.publish('secure', [file('pki/ca.key', 'alpha key')]);
  await beta.store.publish('secure', [file('pki/ca.key', 'beta key')]);
  await beta.s3.send(
    new CopyObjectCommand({
      Bucket: beta.names.secretsBucket,
      Key: 'index/secure',
      CopySource: `${alpha.names.secretsBucket}/index/secure`,
    }),
  );
  await expect(beta.store.readIndex('secure')).rejects.toBeInstanceOf(IntegrityError);
  alpha.aws.destroy();
  beta.aws.destroy();
});

test("an index moved to another layer is refused (the data key's context names its layer)", async () => {
  const env = await environment('gamma');
  await env.store.publish('secure', [file('pki/ca.key', 'k')]);
  await env.store.publish('compute', [file('kubelet.conf', 'c')]);
  await env.s3.send(
    new CopyObjectCommand({
      Bucket: env.names.secretsBucket,
      Key: 'index/compute',
      CopySource: `${env.names.secretsBucket}/index/secure`,
    }),
  );
  await expect(env.store.readIndex('compute')).rejects.toThrow(
    /another environment or layer|authentication failed/,
  );
  env.aws.destroy();
});

test('fetch-secrets refuses an index rolled back to an older version and overwrites nothing', async () => {
  const ENV = 'delta';
  const env = await environment(ENV);
  await env.store.publish('common', [file('pki/ca.crt', 'v1')]);
  const gen1 = await env.s3.send(
    new ListObjectVersionsCommand({ Bucket: env.names.secretsBucket, Prefix: 'index/common' }),
  );
  const gen1Version = gen1.Versions![0]!.VersionId!;
  await env.store.publish('common', [file('pki/ca.crt', 'v2')]);
  const ws = workspace({ [ENV]: '' });
  const vars = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  const first = await cli(['fetch-secrets', '-e', ENV, '--no-kubeconfig'], vars);
  expect(first.code).toBe(0);
  const local = path.join(ws.dir, 'secrets', ENV, 'common', 'pki', 'ca.crt');
  expect(readFileSync(local, 'utf8')).toBe('v2');

  // someone with write access restores generation 1 of the index as the latest version
  await env.s3.send(
    new CopyObjectCommand({
      Bucket: env.names.secretsBucket,
      Key: 'index/common',
      CopySource: `${env.names.secretsBucket}/index/common?versionId=${gen1Version}`,
    }),
  );
  mkdirSync(path.dirname(local), { recursive: true });
  writeFileSync(local, 'v2');
  const rolled = await cli(['fetch-secrets', '-e', ENV, '--no-kubeconfig', '--force'], vars);
  expect(rolled.code).toBe(4);
  expect(rolled.stderr).toMatch(
    /generation 1 is older than generation 2 fetched before \(rollback refused\)/,
  );
  expect(readFileSync(local, 'utf8')).toBe('v2');
  env.aws.destroy();
});
