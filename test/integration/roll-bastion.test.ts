import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describeFleetInstances } from '../../src/aws/fleet.js';
import { cli, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { createFleetAsgs } from '../helpers/fake-fleet.js';
import { useMoto } from '../helpers/moto.js';

/**
 * `roll bastion` against a real bastion ASG in the local AWS: the bastion is replaced, then
 * its host key is re-pinned from the replacement's EC2 console output. The local AWS's
 * console output is a fixed kernel log without cloud-init's host key block, so here the
 * re-pin cannot succeed: the roll must say so, exit 5 (timed out) and leave the old pin in
 * place (ssh then refuses the new bastion: fails closed). The pinning itself, with a
 * console that does hold keys, is test/unit/ssh-keys.test.ts (repinBastion).
 */

const moto = useMoto({ resetEach: false });
const ENV = 'roll-bastion-it';
let t: TestEnvironment;

beforeAll(async () => {
  t = await bootstrapEnvironment(moto.endpoint, ENV);
  await createFleetAsgs(t.aws, ENV, [{ layer: 'bastion', desired: 1 }]);
}, 120_000);

afterAll(() => t?.aws.destroy());

test('roll bastion replaces the bastion, then cannot re-pin from a console without host keys: exit 5, old pin kept', async () => {
  const ws = workspace({ [ENV]: '' });
  const env = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  const before = (await describeFleetInstances(t.aws, ENV)).filter((i) => i.layer === 'bastion');
  expect(before).toHaveLength(1);
  // an operator who ran agent-setup has the old bastion pinned
  const knownHosts = path.join(ws.home, '.ssh', 'kube-platform', `${ENV}.known_hosts`);
  const { pinHostKeys } = await import('../../src/ssh/known-hosts.js');
  const oldKey = {
    type: 'ssh-ed25519',
    // the SSH wire encoding of an ed25519 key: uint32 length + name, uint32 length + 32 bytes
    key: Buffer.concat([
      Buffer.from([0, 0, 0, 11]),
      Buffer.from('ssh-ed25519'),
      Buffer.from([0, 0, 0, 32]),
      Buffer.alloc(32, 7),
    ]).toString('base64'),
  };
  await pinHostKeys(knownHosts, new Map([[`bastion-${ENV}`, [oldKey]]]));
  const pinnedBefore = readFileSync(knownHosts, 'utf8');

  const r = await cli(
    ['roll', '-e', ENV, 'bastion', '--force', '--yes', '--poll', '0.2', '--replace-timeout', '8'],
    env,
  );
  expect(r.stderr).toMatch(/replaced by i-/);
  expect(r.stderr).toContain("pinning the new bastion's host key");
  expect(r.stderr).toMatch(/no host keys in the console output of i-\S+ within 8 s: the old pin stays/);
  expect(r.stderr).toContain(`agent-setup -e ${ENV} --pin console`);
  expect(r.code).toBe(5);
  const after = (await describeFleetInstances(t.aws, ENV)).filter(
    (i) => i.layer === 'bastion' && i.state === 'running',
  );
  expect(after.map((i) => i.instanceId)).not.toContain(before[0]!.instanceId);
  expect(existsSync(knownHosts)).toBe(true);
  expect(readFileSync(knownHosts, 'utf8')).toBe(pinnedBefore);
}, 120_000);
