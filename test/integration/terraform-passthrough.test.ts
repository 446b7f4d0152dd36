/**
 * `terraform -e ENV -- ARGS` (issue 11 item 19): the platform root's Terraform with the
 * backend configured as `run` configures it, against the local AWS and the real binary;
 * and the committed provider lock file is the one init uses, unchanged.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { cli, REPO, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment } from '../helpers/env.js';
import { useMoto } from '../helpers/moto.js';

const moto = useMoto();

test('state list and force-unlock run with the S3 backend of the environment; init is refused', async () => {
  const env = 'tf-pass';
  const boot = await bootstrapEnvironment(moto.endpoint, env);
  const ws = workspace({ [env]: '' });
  const ssh = path.join(ws.dir, 'secrets', env, 'common', 'ssh');
  mkdirSync(ssh, { recursive: true });
  writeFileSync(
    path.join(ssh, `${env}.pub`),
    'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4bC0Zq8vX3gJc5cS2Vw6yJQW0XJ0a4m8l7m1rP0Q9k tf-pass\n',
  );
  const vars = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  // a state as `run` would leave it in the state bucket (one resource)
  const state = {
    version: 4,
    terraform_version: '1.11.4',
    serial: 1,
    lineage: '7c7b7c3e-0000-4000-8000-000000000001',
    outputs: {},
    resources: [
      {
        mode: 'managed',
        type: 'aws_s3_bucket',
        name: 'marker',
        provider: 'provider["registry.terraform.io/hashicorp/aws"]',
        instances: [{ schema_version: 0, attributes: { id: 'marker', bucket: 'marker' } }],
      },
    ],
  };
  await (await boot.aws.s3()).send(
    new PutObjectCommand({
      Bucket: boot.names.stateBucket,
      Key: boot.names.stateKey,
      Body: JSON.stringify(state),
    }),
  );
  const list = await cli(['terraform', '-e', env, '--', 'state', 'list'], vars);
  expect([list.code, list.code ? list.stderr : '']).toEqual([0, '']);
  expect(list.stdout.trim()).toBe('aws_s3_bucket.marker');
  // the backend is the environment's state bucket, with native locking
  const backend = JSON.parse(
    readFileSync(path.join(ws.dir, '.platform', env, 'terraform', 'terraform.tfstate'), 'utf8'),
  ) as { backend: { type: string; config: Record<string, unknown> } };
  expect(backend.backend.type).toBe('s3');
  expect(backend.backend.config.bucket).toBe(boot.names.stateBucket);
  expect(backend.backend.config.use_lockfile).toBe(true);
  // terraform's own exit code passes through
  const unlock = await cli(['terraform', '-e', env, '--', 'force-unlock', '-force', 'no-such-lock'], vars);
  expect(unlock.code).not.toBe(0);
  expect(unlock.code).not.toBe(2);
  const init = await cli(['terraform', '-e', env, '--', 'init'], vars);
  expect(init.code).toBe(2);
  expect(init.stderr).toMatch(/the toolkit runs init itself/);
  // init used the committed lock file and left it as it is
  expect(readFileSync(path.join(ws.dir, 'platform', 'terraform', '.terraform.lock.hcl'), 'utf8')).toBe(
    readFileSync(path.join(REPO, 'platform', 'terraform', '.terraform.lock.hcl'), 'utf8'),
  );
  boot.aws.destroy();
});

test('the committed lock file pins the AWS provider with hashes for linux_amd64 (h1) and every platform (zh)', () => {
  const lock = readFileSync(path.join(REPO, 'platform', 'terraform', '.terraform.lock.hcl'), 'utf8');
  expect(lock).toMatch(/provider "registry\.terraform\.io\/hashicorp\/aws" \{\n {2}version {5}= "5\.100\.0"/);
  expect(lock.match(/"h1:[A-Za-z0-9+/=]+"/g)?.length).toBeGreaterThanOrEqual(1);
  expect(lock.match(/"zh:[0-9a-f]{64}"/g)?.length).toBeGreaterThanOrEqual(14);
});
