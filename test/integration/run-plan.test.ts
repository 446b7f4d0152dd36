import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { listFiles } from '../../src/fsutil.js';
import { type CliResult, cli, workspace } from '../helpers/cli.js';
import { useMoto, writes } from '../helpers/moto.js';

/**
 * `run --plan` changes nothing (issue 12): moto's request recorder sees only reads, and
 * secrets/, platform/terraform and the environment's data directory stay byte-identical — on
 * a new environment (the Terraform plan runs against an empty local state; no bucket, key or
 * state is created) and on a built one (the etcd manifest change is listed with its diff
 * before anything is published). Policy refuses a shared environment with SSH open to the
 * world before any write, and a waiver lets it through.
 */

const moto = useMoto({ resetEach: false });
const ws = workspace({ 'play-plan': '', 'play-never': '' });
const narrow = readFileSync(path.join(ws.dir, 'environments', 'play.env'), 'utf8');
writeFileSync(path.join(ws.dir, 'environments', 'shared-open.env'), `${narrow}AWS_ACCOUNT_ID=123456789012\n`);

function env(): Record<string, string | undefined> {
  return {
    ...moto.env,
    PLATFORM_WORKDIR: ws.dir,
    HOME: ws.home,
    AWS_PROFILE: undefined,
    PLATFORM_LOCAL_AWS_DIR: path.join(ws.dir, '.local-aws'),
  };
}

/** sha256 over every file (names, bytes) under the directories a plan must not touch. */
async function tree(envName: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const dir of [
    path.join(ws.dir, 'secrets', envName),
    path.join(ws.dir, 'platform', 'terraform'),
    path.join(ws.dir, '.platform', envName),
  ]) {
    const h = createHash('sha256');
    const files = existsSync(dir) ? await listFiles(dir) : [];
    for (const f of files.sort()) h.update(f).update(readFileSync(path.join(dir, f)));
    out[dir] = `${files.length} ${h.digest('hex')}`;
  }
  return out;
}

async function recorded(args: string[]): Promise<CliResult & { written: string[]; requests: number }> {
  const { result, requests } = await moto.record(() => cli(args, env()));
  return { ...result, written: writes(requests), requests: requests.length };
}

const fail = (r: CliResult) => `exit ${r.code}\n${r.stderr.slice(-4000)}`;

test('cleanup of an environment that was never created: nothing to destroy, exit 0, only reads', async () => {
  const r = await recorded(['cleanup', '-e', 'play-never', '--yes']);
  expect({ code: r.code, log: r.code === 0 ? '' : fail(r) }).toEqual({ code: 0, log: '' });
  expect(r.stderr).toMatch(/play-never: nothing to destroy/);
  expect(r.written).toEqual([]);
});

test('run --plan on a new environment: a full plan, only reads, no file written', async () => {
  const before = await tree('play-plan');
  const r = await recorded(['run', '-e', 'play-plan', '--plan', '--exit-code']);
  expect({ code: r.code, log: r.code === 7 ? '' : fail(r) }).toEqual({ code: 7, log: '' });
  expect(r.requests).toBeGreaterThan(0);
  expect(r.written).toEqual([]);
  expect(await tree('play-plan')).toEqual(before);
  expect(existsSync(path.join(ws.dir, 'secrets', 'play-plan'))).toBe(false);
  expect(r.stdout).toMatch(/\+ create KMS key alias\/kube-platform\/play-plan/);
  expect(r.stdout).toMatch(/\+ secure\/pki\/ca\.key \(missing\)/);
  expect(r.stdout).toMatch(/planned against an empty state/);
  expect(r.stdout).toMatch(/\+ module\.masters\.aws_ebs_volume\.this\["etcd-0"\]/);
  expect(r.stdout).toMatch(/WARNING: play-plan VIOLATES .*POLICY RULES/);
  expect(r.stdout).not.toMatch(/PRIVATE KEY/);
});

test('run --plan --json: the change set for machines', async () => {
  const r = await cli(['run', '-e', 'play-plan', '--plan', '--json'], env());
  expect({ code: r.code, log: r.code === 0 ? '' : fail(r) }).toEqual({ code: 0, log: '' });
  const j = JSON.parse(r.stdout) as {
    changes: boolean;
    terraform: { emptyState: boolean; add: number };
    policy: { mode: string; results: { id: string; status: string }[] };
  };
  expect(j.changes).toBe(true);
  expect(j.terraform.emptyState).toBe(true);
  expect(j.terraform.add).toBeGreaterThan(50);
  expect(j.policy.mode).toBe('warn');
  expect(j.policy.results.find((x) => x.id === 'cis-aws-6.3')?.status).toBe('fail');
});

test('a shared environment with SSH open to 0.0.0.0/0 is refused before any write; a waiver lets it through', async () => {
  const r = await recorded(['run', '-e', 'shared-open', '--plan']);
  expect({ code: r.code, log: r.code === 6 ? '' : fail(r) }).toEqual({ code: 6, log: '' });
  expect(r.written).toEqual([]);
  expect(r.stdout).toMatch(
    /FAIL cis-aws-6\.3 \[critical\] module\.network\.aws_vpc_security_group_ingress_rule\.this\["bastion-ssh-0\.0\.0\.0\/0"\]: cidr_ipv4/,
  );
  const failed = [...new Set([...r.stdout.matchAll(/^FAIL (\S+)/gm)].map((m) => m[1]!))];
  const waivers = failed.map((id) => `${id} until 2099-12-31: test of waivers`).join('; ');
  writeFileSync(
    path.join(ws.dir, 'environments', 'shared-open.env'),
    `${narrow}AWS_ACCOUNT_ID=123456789012\nPOLICY_WAIVERS="${waivers}"\n`,
  );
  const w = await recorded(['run', '-e', 'shared-open', '--plan']);
  expect({ code: w.code, log: w.code === 0 ? '' : fail(w) }).toEqual({ code: 0, log: '' });
  expect(w.written).toEqual([]);
  expect(w.stdout).toMatch(/WAIVED cis-aws-6\.3/);
});

test('on a built environment, run --plan lists the etcd manifest diff and writes nothing', async () => {
  const built = await cli(['run', '-e', 'play-plan', '--yes'], env());
  expect({ code: built.code, log: built.code === 0 ? '' : fail(built) }).toEqual({ code: 0, log: '' });
  const noop = await recorded(['run', '-e', 'play-plan', '--plan', '--exit-code', '--debug']);
  expect({ code: noop.code, log: noop.code === 0 ? '' : fail(noop) }).toEqual({ code: 0, log: '' });
  expect(noop.written).toEqual([]);
  // Terraform planned once, with the variables last applied, started before the inputs were read
  const plans = (r: CliResult) => r.stderr.match(/debug: exec: \S*terraform plan /g)?.length ?? 0;
  expect(plans(noop)).toBe(1);
  expect(noop.stderr).not.toMatch(/early plan used other variables/);

  // that guess is checked against the real inputs: with another node image recorded as the
  // last applied one, the early plan is stopped and Terraform plans again with the real image
  // (which the built environment has: no changes)
  const varsFile = path.join(ws.dir, '.platform', 'play-plan', 'terraform', 'platform.tfvars.json');
  const applied = readFileSync(varsFile, 'utf8');
  writeFileSync(varsFile, applied.replace(/"ami_id": "[^"]+"/, '"ami_id": "ami-0123456789abcdef0"'));
  const beforeGuess = await tree('play-plan');
  const guessed = await recorded(['run', '-e', 'play-plan', '--plan', '--exit-code', '--debug']);
  // two plans ran in the data directory, the second once the first had ended: neither wrote there
  expect(await tree('play-plan')).toEqual(beforeGuess);
  writeFileSync(varsFile, applied);
  expect({ code: guessed.code, log: guessed.code === 0 ? '' : fail(guessed) }).toEqual({ code: 0, log: '' });
  expect(guessed.stderr).toMatch(/early plan used other variables; planning again/);
  expect(plans(guessed)).toBe(2);
  expect(guessed.written).toEqual([]);

  // Terraform starts planning with the working copy's SSH public key before the PKI plan has
  // derived the key from the private key; a .pub that does not match the private key must
  // not reach the plan: the PKI plan rewrites the .pub, and Terraform plans with the derived
  // key, which the built environment already has
  const pub = path.join(ws.dir, 'secrets', 'play-plan', 'common', 'ssh', 'play-plan.pub');
  const goodPub = readFileSync(pub, 'utf8');
  const otherKey = path.join(mkdtempSync(path.join(tmpdir(), 'kp-other-key-')), 'k');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'play-plan', '-f', otherKey]);
  writeFileSync(pub, readFileSync(`${otherKey}.pub`, 'utf8'));
  const stale = await recorded(['run', '-e', 'play-plan', '--plan', '--json']);
  expect({ code: stale.code, log: stale.code === 0 ? '' : fail(stale) }).toEqual({ code: 0, log: '' });
  const staleSet = JSON.parse(stale.stdout) as {
    pki: { write: { path: string }[] };
    terraform: { changes: boolean; resources: { address: string }[] };
  };
  expect(staleSet.pki.write.map((w) => w.path)).toContain('common/ssh/play-plan.pub');
  expect({ changes: staleSet.terraform.changes, resources: staleSet.terraform.resources }).toEqual({
    changes: false,
    resources: [],
  });
  expect(stale.written).toEqual([]);
  writeFileSync(pub, goodPub);

  const file = path.join(ws.dir, 'environments', 'play-plan.env');
  writeFileSync(file, `${readFileSync(file, 'utf8')}ETCD_VERSION=v3.6.5\n`);
  const before = await tree('play-plan');
  const r = await recorded(['run', '-e', 'play-plan', '--plan', '--exit-code']);
  expect({ code: r.code, log: r.code === 7 ? '' : fail(r) }).toEqual({ code: 7, log: '' });
  expect(r.written).toEqual([]);
  expect(await tree('play-plan')).toEqual(before);
  expect(r.stdout).toMatch(/~ manifests\/etcd\.yaml\n/);
  expect(r.stdout).toMatch(/-\s+image: "?registry\.k8s\.io\/etcd:v?3\.6\.4/);
  expect(r.stdout).toMatch(/\+\s+image: "?registry\.k8s\.io\/etcd:v?3\.6\.5/);
  // a declined run without a terminal fails at once, before any request
  const declined = await recorded(['run', '-e', 'play-plan']);
  expect(declined.code).toBe(2);
  expect(declined.written).toEqual([]);
});
