import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { type CliResult, cli, workspace } from '../helpers/cli.js';
import { useMoto, writes } from '../helpers/moto.js';

/**
 * Plans that travel (issue 12 item 3): `run --plan --out FILE` saves the change set,
 * encrypted with the environment's KMS key; `run --apply FILE` applies exactly that, or
 * refuses it when anything it was computed from moved — a concurrent publish, a state
 * written meanwhile — with exit 3 and, as moto's request recorder shows, no write at all. A
 * flipped byte is exit 4; bad flags are exit 2 before any AWS request. Real moto_server and
 * the real terraform, as an operator runs them.
 */

const moto = useMoto({ resetEach: false });
const ENV = 'play-saved';
const ws = workspace({ [ENV]: '' });
const envFile = path.join(ws.dir, 'environments', `${ENV}.env`);
const secrets = path.join(ws.dir, 'secrets', ENV);
const plans = path.join(ws.dir, 'plans');
mkdirSync(plans);

function env(): Record<string, string | undefined> {
  return {
    ...moto.env,
    PLATFORM_WORKDIR: ws.dir,
    HOME: ws.home,
    AWS_PROFILE: undefined,
    PLATFORM_LOCAL_AWS_DIR: path.join(ws.dir, '.local-aws'),
  };
}
function aws(args: string[]): string {
  return execFileSync('aws', ['--endpoint-url', moto.endpoint, '--region', 'eu-west-1', ...args], {
    env: { ...process.env, ...moto.env },
    encoding: 'utf8',
  });
}
async function recorded(args: string[]): Promise<CliResult & { written: string[]; requests: number }> {
  const { result, requests } = await moto.record(() => cli(args, env()));
  return { ...result, written: writes(requests), requests: requests.length };
}
const fail = (r: CliResult) => `exit ${r.code}\n${r.stderr.slice(-4000)}`;
const account = '123456789012';
const stateBucket = `kp-${ENV}-${account}-eu-west-1-tfstate`;
const secretsBucket = `kp-${ENV}-${account}-eu-west-1-secrets`;

/** The generation of `index/<layer>` as the cluster's own tooling reports it (fetch-secrets --dry-run is noisy; the index's VersionId count is enough). */
function indexVersions(layer: string): number {
  const j = JSON.parse(
    aws(['s3api', 'list-object-versions', '--bucket', secretsBucket, '--prefix', `index/${layer}`]),
  ) as { Versions?: unknown[] };
  return j.Versions?.length ?? 0;
}
function sshRuleCidrs(): string[] {
  const j = JSON.parse(aws(['ec2', 'describe-security-group-rules'])) as {
    SecurityGroupRules: { CidrIpv4?: string; FromPort?: number; IsEgress?: boolean }[];
  };
  return j.SecurityGroupRules.filter((r) => !r.IsEgress && r.FromPort === 22 && r.CidrIpv4)
    .map((r) => r.CidrIpv4!)
    .sort();
}

test('bad flags are exit 2 before any AWS request', async () => {
  const cases: [string[], RegExp][] = [
    [
      ['run', '-e', ENV, '--apply', path.join(plans, 'x'), '--plan'],
      /--apply FILE .* does not go with --plan/,
    ],
    [['run', '-e', ENV, '--out', path.join(plans, 'x')], /--out goes with --plan/],
    [
      ['run', '-e', ENV, '--apply', path.join(plans, 'missing.plan')],
      /--apply .*missing\.plan: cannot read it \(ENOENT\)/,
    ],
    [['run', '-e', ENV, '--apply', plans], /--apply .*plans: not a regular file/],
    [
      ['run', '-e', ENV, '--plan', '--out', path.join(ws.dir, 'no', 'such', 'dir', 'p')],
      /--out .*: the directory .* does not exist/,
    ],
  ];
  for (const [args, message] of cases) {
    const r = await recorded(args);
    expect({ args, code: r.code, requests: r.requests }).toEqual({ args, code: 2, requests: 0 });
    expect(r.stderr).toMatch(message);
  }
});

test('run --plan --out on an environment that does not exist yet is refused: nothing to encrypt it with', async () => {
  const file = path.join(plans, 'new.plan');
  const r = await recorded(['run', '-e', ENV, '--plan', '--out', file]);
  expect({ code: r.code, log: r.code === 2 ? '' : fail(r) }).toEqual({ code: 2, log: '' });
  expect(r.stderr).toMatch(/--out: play-saved does not exist yet \(no KMS key\)/);
  expect(r.written).toEqual([]);
  expect(existsSync(file)).toBe(false);
});

test('plan --out, then --apply: exactly the saved change is applied; a replay is stale', async () => {
  const built = await cli(['run', '-e', ENV, '--yes'], env());
  expect({ code: built.code, log: built.code === 0 ? '' : fail(built) }).toEqual({ code: 0, log: '' });
  expect(sshRuleCidrs()).toEqual(['0.0.0.0/0']);

  // a manifest change (the secure layer) and a new resource (an SSH rule)
  writeFileSync(
    envFile,
    `${readFileSync(envFile, 'utf8').replace('SSH_ACCESS_LIST=0.0.0.0/0', 'SSH_ACCESS_LIST=0.0.0.0/0,203.0.113.0/24')}ETCD_VERSION=v3.6.5\n`,
  );
  const file = path.join(plans, 'p1.plan');
  const planned = await recorded(['run', '-e', ENV, '--plan', '--out', file, '--exit-code']);
  expect({ code: planned.code, log: planned.code === 7 ? '' : fail(planned) }).toEqual({ code: 7, log: '' });
  expect(planned.written).toEqual([]);
  expect(planned.stdout).toMatch(/~ manifests\/etcd\.yaml\n/);
  expect(planned.stdout).toMatch(
    /\+ module\.network\.aws_vpc_security_group_ingress_rule\.this\["bastion-ssh-203\.0\.113\.0\/24"\]/,
  );
  expect(planned.stderr).toMatch(/plan saved to .*p1\.plan/);
  expect(statSync(file).mode & 0o777).toBe(0o600);
  const bytes = readFileSync(file);
  expect(bytes.subarray(0, 4).toString()).toBe('KPSP');
  for (const plain of ['PRIVATE KEY', 'etcd:3.6.5', 'apiVersion', 'bastion-ssh'])
    expect([plain, bytes.includes(plain)]).toEqual([plain, false]);

  const secureBefore = indexVersions('secure');
  const applied = await cli(['run', '-e', ENV, '--apply', file, '--yes', '--rollout', 'all-at-once'], env());
  expect({ code: applied.code, log: applied.code === 0 ? '' : fail(applied) }).toEqual({ code: 0, log: '' });
  expect(applied.stdout).toMatch(/~ manifests\/etcd\.yaml\n/);
  expect(applied.stderr).toMatch(/terraform apply \(the plan shown\)/);
  expect(applied.stderr).toMatch(/the saved plan .*p1\.plan was applied/);
  // layers published, resources created
  expect(indexVersions('secure')).toBe(secureBefore + 1);
  expect(readFileSync(path.join(secrets, 'secure', 'manifests', 'etcd.yaml'), 'utf8')).toMatch(
    /etcd:v?3\.6\.5/,
  );
  expect(sshRuleCidrs()).toEqual(['0.0.0.0/0', '203.0.113.0/24']);
  // the environment is now what the plan said: nothing left to do
  const noop = await cli(['run', '-e', ENV, '--plan', '--exit-code'], env());
  expect({ code: noop.code, log: noop.code === 0 ? '' : fail(noop) }).toEqual({ code: 0, log: '' });

  // applying it again: the indexes and the state moved since it was made
  const replay = await recorded(['run', '-e', ENV, '--apply', file, '--yes']);
  expect({ code: replay.code, log: replay.code === 3 ? '' : fail(replay) }).toEqual({ code: 3, log: '' });
  expect(replay.stderr).toMatch(
    /p1\.plan is stale: .*layer secure: the bucket's index is at generation \d+, the plan was computed against generation \d+/,
  );
  expect(replay.stderr).toMatch(/the Terraform state .* changed/);
  expect(replay.written).toEqual([]);
});

test('a saved plan goes stale after a concurrent upload-secrets: exit 3, no write', async () => {
  const extra = path.join(secrets, 'compute', 'extra.conf');
  writeFileSync(extra, 'one\n', { mode: 0o600 });
  const file = path.join(plans, 'p2.plan');
  const planned = await cli(['run', '-e', ENV, '--plan', '--out', file], env());
  expect({ code: planned.code, log: planned.code === 0 ? '' : fail(planned) }).toEqual({ code: 0, log: '' });
  expect(planned.stdout).toMatch(/\+ extra\.conf/);
  // someone else publishes meanwhile
  writeFileSync(extra, 'two\n', { mode: 0o600 });
  const up = await cli(['upload-secrets', '-e', ENV], env());
  expect({ code: up.code, log: up.code === 0 ? '' : fail(up) }).toEqual({ code: 0, log: '' });
  const compute = indexVersions('compute');
  const r = await recorded(['run', '-e', ENV, '--apply', file, '--yes']);
  expect({ code: r.code, log: r.code === 3 ? '' : fail(r) }).toEqual({ code: 3, log: '' });
  expect(r.stderr).toMatch(/p2\.plan is stale: .*layer compute: the bucket's index is at generation/);
  expect(r.stderr).toMatch(/the working copy's compute layer changed since the plan: extra\.conf/);
  expect(r.stderr).toMatch(/nothing was applied/);
  expect(r.written).toEqual([]);
  expect(indexVersions('compute')).toBe(compute);
});

test('a saved plan goes stale when the Terraform state changes: exit 3, no write', async () => {
  writeFileSync(path.join(secrets, 'compute', 'extra.conf'), 'three\n', { mode: 0o600 });
  const file = path.join(plans, 'p3.plan');
  const planned = await cli(['run', '-e', ENV, '--plan', '--out', file], env());
  expect({ code: planned.code, log: planned.code === 0 ? '' : fail(planned) }).toEqual({ code: 0, log: '' });
  // the state object is written again (as a concurrent terraform apply would)
  const state = path.join(plans, 'state.json');
  aws(['s3api', 'get-object', '--bucket', stateBucket, '--key', `${ENV}/platform.tfstate`, state]);
  aws(['s3api', 'put-object', '--bucket', stateBucket, '--key', `${ENV}/platform.tfstate`, '--body', state]);
  const r = await recorded(['run', '-e', ENV, '--apply', file, '--yes']);
  expect({ code: r.code, log: r.code === 3 ? '' : fail(r) }).toEqual({ code: 3, log: '' });
  expect(r.stderr).toMatch(
    /p3\.plan is stale: the Terraform state s3:\/\/.*platform\.tfstate changed \(version \S+ -> \S+\)/,
  );
  expect(r.stderr).not.toMatch(/layer compute/);
  expect(r.written).toEqual([]);
});

test('a saved plan with one byte flipped is exit 4, naming the file and nothing of its content', async () => {
  const file = path.join(plans, 'p4.plan');
  const planned = await cli(['run', '-e', ENV, '--plan', '--out', file], env());
  expect({ code: planned.code, log: planned.code === 0 ? '' : fail(planned) }).toEqual({ code: 0, log: '' });
  const bytes = readFileSync(file);
  for (const [name, at] of [
    ['body', Math.floor(bytes.length / 2)],
    ['tag', bytes.length - 1],
    ['data key', 12],
  ] as const) {
    const flipped = Buffer.from(bytes);
    flipped[at] = flipped[at]! ^ 0x01;
    const bad = path.join(plans, `p4-${name.replace(' ', '-')}.plan`);
    writeFileSync(bad, flipped, { mode: 0o600 });
    const r = await recorded(['run', '-e', ENV, '--apply', bad, '--yes']);
    expect({ name, code: r.code, log: r.code === 4 ? '' : fail(r) }).toEqual({ name, code: 4, log: '' });
    expect(r.stderr).toMatch(
      new RegExp(`p4-${name.replace(' ', '-')}\\.plan: the saved plan does not open for environment ${ENV}`),
    );
    expect(r.stderr).not.toMatch(/PRIVATE KEY|extra\.conf|three/);
    expect(r.written).toEqual([]);
  }
  // a file that is no saved plan at all
  const junk = path.join(plans, 'junk.plan');
  writeFileSync(junk, 'hello\n');
  const j = await cli(['run', '-e', ENV, '--apply', junk, '--yes'], env());
  expect(j.code).toBe(4);
  expect(j.stderr).toMatch(/junk\.plan: not a kube-platform saved plan/);
  // the untouched file still applies
  const ok = await cli(['run', '-e', ENV, '--apply', file, '--yes', '--rollout', 'all-at-once'], env());
  expect({ code: ok.code, log: ok.code === 0 ? '' : fail(ok) }).toEqual({ code: 0, log: '' });
  expect(ok.stdout).toMatch(/~ extra\.conf/);
});
