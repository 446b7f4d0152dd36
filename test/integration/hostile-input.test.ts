/**
 * Hostile or malformed operator input against a real moto_server (issue 11): a symlinked
 * layer directory, a missing layer, file modes, replayed and deleted indexes, missing object
 * versions, a damaged data key, layer paths that are files, FIFOs where files are read.
 * Every refusal is shown to come before the first write: moto's request recorder
 * (`/moto-api/recorder`) sees no PutObject, DeleteObject or other write.
 */

import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DescribeImagesCommand, DescribeInstancesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListObjectVersionsCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { cli, workspace } from '../helpers/cli.js';
import { bootstrapEnvironment } from '../helpers/env.js';
import { useMoto, writes } from '../helpers/moto.js';

const moto = useMoto();

/** A workspace with environment `env`, its secrets tree and the CLI's variables. */
async function setup(env: string) {
  const boot = await bootstrapEnvironment(moto.endpoint, env);
  const ws = workspace({ [env]: '' });
  const secrets = path.join(ws.dir, 'secrets', env);
  const vars = { ...moto.env, PLATFORM_WORKDIR: ws.dir, HOME: ws.home, AWS_PROFILE: undefined };
  const put = (rel: string, text: string, mode = 0o600) => {
    const f = path.join(secrets, rel);
    mkdirSync(path.dirname(f), { recursive: true, mode: 0o700 });
    writeFileSync(f, text);
    chmodSync(f, mode);
  };
  const run = (args: string[]) => cli([...args, '-e', env], vars);
  /** runs the CLI with the recorder on; `written` lists the writes it made */
  const recorded = async (args: string[]) => {
    const { result, requests } = await moto.record(() => run(args));
    return { ...result, written: writes(requests), requests: requests.length };
  };
  const s3 = await boot.aws.s3();
  return { ...boot, ws, secrets, vars, put, run, recorded, s3 };
}

describe('upload-secrets refuses before writing anything', () => {
  test('a layer directory that is a symbolic link (item 1)', async () => {
    const t = await setup('hostile-link');
    t.put('compute/kubelet.conf', 'real');
    const outside = mkdtempSync(path.join(os.tmpdir(), 'kp-outside-'));
    writeFileSync(path.join(outside, 'stolen.txt'), 'x');
    renameSync(path.join(t.secrets, 'compute'), `${outside}.orig`);
    symlinkSync(outside, path.join(t.secrets, 'compute'));
    const r = await t.recorded(['upload-secrets']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/compute: the layer directory is a symbolic link/);
    expect(r.requests).toBeGreaterThan(0); // the recorder was on (STS identity at least)
    expect(r.written).toEqual([]);
    t.aws.destroy();
  });

  test('a layer named with --layer whose directory is missing, unless --allow-empty (item 3)', async () => {
    const t = await setup('hostile-empty');
    t.put('compute/kubelet.conf', 'k');
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    execFileSync('rm', ['-rf', path.join(t.secrets, 'compute')]);
    const r = await t.recorded(['upload-secrets', '--layer', 'compute']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/compute is missing: publishing it would remove every file of layer compute/);
    expect(r.stderr).toMatch(/--allow-empty/);
    expect(r.written).toEqual([]);
    mkdirSync(path.join(t.secrets, 'compute'));
    const empty = await t.recorded(['upload-secrets', '--layer', 'compute']);
    expect(empty.code).toBe(2);
    expect(empty.stderr).toMatch(/compute is empty/);
    expect(empty.written).toEqual([]);
    const ok = await t.run(['upload-secrets', '--layer', 'compute', '--allow-empty']);
    expect(ok.code).toBe(0);
    const idx = await t.store.readIndex('compute');
    expect(idx !== 'not-modified' && idx?.index.generation).toBe(2);
    expect(idx !== 'not-modified' && Object.keys(idx?.index.files ?? {})).toEqual([]);
    t.aws.destroy();
  });

  test('file modes outside the allow-list, and keys wider than 0600 (item 5)', async () => {
    const t = await setup('hostile-mode');
    t.put('common/notes.txt', 'n', 0o644);
    t.put('common/open.sh', 'echo', 0o777);
    t.put('secure/pki/x.key', 'k', 0o644);
    const r = await t.recorded(['upload-secrets']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/common\/open\.sh: mode 0777 cannot be published/);
    expect(r.written).toEqual([]);
    chmodSync(path.join(t.secrets, 'common', 'open.sh'), 0o755);
    const key = await t.recorded(['upload-secrets']);
    expect(key.code).toBe(2);
    expect(key.stderr).toMatch(/secure\/pki\/x\.key: mode 0644: a private key is published only as 0600/);
    expect(key.written).toEqual([]);
    chmodSync(path.join(t.secrets, 'secure', 'pki', 'x.key'), 0o600);
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const idx = await t.store.readIndex('common');
    expect(idx !== 'not-modified' && idx?.index.files['open.sh']?.mode).toBe(0o755);
    t.aws.destroy();
  });

  test('a layer path that is a regular file (item 11)', async () => {
    const t = await setup('hostile-file');
    mkdirSync(t.secrets, { recursive: true });
    writeFileSync(path.join(t.secrets, 'compute'), 'not a directory');
    const r = await t.recorded(['upload-secrets']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/compute: is not a directory/);
    expect(r.written).toEqual([]);
    t.aws.destroy();
  });
});

describe('integrity on the machine that publishes (item 8)', () => {
  test('an older index replayed is refused by upload-secrets and fetch-secrets', async () => {
    const t = await setup('hostile-replay');
    t.put('common/a.txt', 'v1');
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const v1 = await t.s3.send(
      new ListObjectVersionsCommand({ Bucket: t.names.secretsBucket, Prefix: 'index/common' }),
    );
    const gen1 = v1.Versions![0]!.VersionId!;
    t.put('common/a.txt', 'v2');
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    // someone with write access restores generation 1 of the index as the latest version
    await t.s3.send(
      new CopyObjectCommand({
        Bucket: t.names.secretsBucket,
        Key: 'index/common',
        CopySource: `${t.names.secretsBucket}/index/common?versionId=${gen1}`,
      }),
    );
    t.put('common/a.txt', 'v3');
    const up = await t.recorded(['upload-secrets']);
    expect(up.code).toBe(4);
    expect(up.stderr).toMatch(/index\/common: generation 1 is older than generation 2/);
    expect(up.written).toEqual([]);
    const fetch = await t.run(['fetch-secrets', '--no-kubeconfig', '--force']);
    expect(fetch.code).toBe(4);
    expect(readFileSync(path.join(t.secrets, 'common', 'a.txt'), 'utf8')).toBe('v3');
    t.aws.destroy();
  });

  test('a deleted index after a seen generation is an integrity error, not "nothing published"', async () => {
    const t = await setup('hostile-gone');
    t.put('secure/a.txt', 's');
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    await t.s3.send(new DeleteObjectCommand({ Bucket: t.names.secretsBucket, Key: 'index/secure' }));
    const fetch = await t.recorded(['fetch-secrets', '--no-kubeconfig']);
    expect(fetch.code).toBe(4);
    expect(fetch.stderr).toMatch(/index\/secure is missing, but generation 1 of layer secure was seen/);
    expect(fetch.stderr).not.toMatch(/secure: nothing published/);
    const up = await t.recorded(['upload-secrets']);
    expect(up.code).toBe(4);
    expect(up.written).toEqual([]);
    t.aws.destroy();
  });
});

describe('fetch-secrets names what failed (item 11)', () => {
  test('a missing object version names the object and the layer, exit 4, nothing written', async () => {
    const t = await setup('hostile-version');
    t.put('compute/kubelet.conf', 'k');
    t.put('compute/other.conf', 'o');
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const idx = await t.store.readIndex('compute');
    if (!idx || idx === 'not-modified') throw new Error('no index');
    await t.s3.send(
      new DeleteObjectCommand({
        Bucket: t.names.secretsBucket,
        Key: 'compute/kubelet.conf',
        VersionId: idx.index.files['kubelet.conf']!.versionId,
      }),
    );
    execFileSync('rm', ['-rf', t.secrets]);
    const r = await t.recorded(['fetch-secrets', '--no-kubeconfig']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(
      /compute\/kubelet\.conf: version \S+, which index\/compute names, does not exist/,
    );
    expect(() => readFileSync(path.join(t.secrets, 'compute', 'other.conf'))).toThrow();
    t.aws.destroy();
  });

  test("flipped bytes in a data key's KMS part: could not decrypt the layer, exit 4, not skipped", async () => {
    const t = await setup('hostile-kms');
    t.put('common/a.txt', 'a');
    t.put('compute/b.txt', 'b');
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const got = await t.s3.send(
      new GetObjectCommand({ Bucket: t.names.secretsBucket, Key: 'index/compute' }),
    );
    const bytes = Buffer.from(await got.Body!.transformToByteArray());
    // magic (4) | edkLen (2) | edk: flip a byte in the middle of the encrypted data key
    const edkLen = bytes.readUInt16BE(4);
    bytes[6 + Math.floor(edkLen / 2)]! ^= 0xff;
    await t.s3.send(
      new PutObjectCommand({ Bucket: t.names.secretsBucket, Key: 'index/compute', Body: bytes }),
    );
    const r = await t.run(['fetch-secrets', '--no-kubeconfig']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/could not decrypt layer "compute"/);
    expect(r.stderr).not.toMatch(/not readable with these credentials/);
    t.aws.destroy();
  });
});

describe('refusals come before the first change (items 2 and 4)', () => {
  test('cleanup --yes --confirm ENV --purge without a terminal refuses before destroying anything', async () => {
    const t = await setup('play-hostile-purge');
    const r = await t.recorded(['cleanup', '--yes', '--confirm', 'play-hostile-purge', '--purge']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--purge .*stdin is not a terminal; nothing was destroyed/);
    expect(r.written).toEqual([]);
    t.aws.destroy();
  });

  test('terminate-layer --yes --confirm naming another environment is refused in a playground too', async () => {
    const env = 'play-hostile-term';
    const t = await setup(env);
    const ec2 = await t.aws.ec2();
    const images = await ec2.send(new DescribeImagesCommand({}));
    const run = await ec2.send(
      new RunInstancesCommand({
        ImageId: images.Images![0]!.ImageId!,
        MinCount: 1,
        MaxCount: 1,
        InstanceType: 't3.micro',
        TagSpecifications: [
          {
            ResourceType: 'instance',
            Tags: [
              { Key: 'Environment', Value: env },
              { Key: 'Layer', Value: 'compute' },
              { Key: 'Name', Value: `${env}-worker` },
            ],
          },
        ],
      }),
    );
    const id = run.Instances![0]!.InstanceId!;
    const r = await t.recorded(['terminate-layer', 'compute', '--yes', '--confirm', 'not-this-env']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--confirm not-this-env does not match the environment play-hostile-term/);
    expect(r.written).toEqual([]);
    const after = await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }));
    expect(after.Reservations![0]!.Instances![0]!.State!.Name).toBe('running');
    t.aws.destroy();
  });
});

describe('flags are checked before anything is read from AWS (items 6, 7, 14)', () => {
  test('run --wait --wait-timeout abc is a usage error before bootstrap or publish', async () => {
    const t = await setup('hostile-flag');
    t.put('common/a.txt', 'a');
    const r = await t.recorded(['run', '--skip-terraform', '--wait', '--wait-timeout', 'abc']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--wait-timeout <seconds>' argument 'abc' is invalid/);
    expect(r.requests).toBe(0);
    const zero = await t.recorded(['sync-status', '--wait', '--timeout', '0']);
    expect(zero.code).toBe(2);
    expect(zero.requests).toBe(0);
    t.aws.destroy();
  });

  test("inside a launcher's shell a different -e is refused: nothing is created for it", async () => {
    const t = await setup('play-hostile-env');
    const shell = { ...t.vars, PLATFORM_ENV: 'play-hostile-env', PLATFORM_LAUNCH: 'local' };
    const { result: r, requests } = await moto.record(() =>
      cli(['run', '-e', 'play', '--skip-terraform'], shell),
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-e play: this shell is for environment play-hostile-env/);
    expect(requests).toEqual([]);
    // the launcher's own environment, given again or not, is fine
    const same = await cli(['whoami', '-e', 'play-hostile-env'], shell);
    expect(same.code).toBe(0);
    const implicit = await cli(['whoami'], shell);
    expect(implicit.code).toBe(0);
    t.aws.destroy();
  });

  test('--debug is accepted after the command name, as the README says', async () => {
    const t = await setup('hostile-debug');
    const r = await t.run(['whoami', '--debug']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/123456789012/);
    // --json before the command name, for a command that takes it
    const json = await cli(['--json', 'whoami', '-e', 'hostile-debug'], t.vars);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ account: '123456789012' });
    const bad = await t.run(['upload-secrets', '--layer', 'nope', '--debug']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).not.toMatch(/unknown option '--debug'/);
    t.aws.destroy();
  });
});

describe('bounded error output (item 13)', () => {
  test('a 10 MB environment file of junk lines and a 10 MB value give a short report, exit 2', async () => {
    const junk = `${'junk line without an equals sign\n'.repeat(150_000)}PUBLIC_DNS_ZONE=${'x'.repeat(10_000_000)}\n`;
    const ws = workspace({ 'hostile-big': junk });
    const r = await cli(['whoami', '-e', 'hostile-big'], {
      ...moto.env,
      PLATFORM_WORKDIR: ws.dir,
      HOME: ws.home,
    });
    expect(r.code).toBe(2);
    expect(r.stderr.length).toBeLessThan(30_000);
    expect(r.stderr).toMatch(/hostile-big\.env:1: not a KEY=value line/);
    expect(r.stderr).toMatch(/… and \d+ more problems \(\d+ in all\)/);
    expect(r.stderr).not.toMatch(/x{1000}/);
  });
});

describe('static pods the agents would refuse are never published (item 12)', () => {
  test('run with a template emitting an unknown Pod field fails at render, before any write', async () => {
    const t = await setup('hostile-pod');
    writeFileSync(
      path.join(t.ws.dir, 'platform', 'manifests', 'secure', 'manifests', 'extra.yaml.hbs'),
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: extra\nspec:\n  containers:\n    - name: x\n      image: x\n      bogusField: 1\n',
    );
    const r = await t.recorded(['run', '--skip-terraform']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/extra\.yaml\.hbs.*spec\.containers\[0\]\.bogusField: unknown field/);
    expect(r.written).toEqual([]);
    t.aws.destroy();
  });

  test('upload-secrets refuses a hand-edited manifest the agent would refuse', async () => {
    const t = await setup('hostile-pod-up');
    t.put(
      'secure/manifests/x.yaml',
      'apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n    - name: x\n      image: x\n  hostNetwrk: true\n',
    );
    const r = await t.recorded(['upload-secrets']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/secure\/manifests\/x\.yaml:9: spec\.hostNetwrk: unknown field/);
    expect(r.written).toEqual([]);
    t.aws.destroy();
  });
});

/** A static pod the agent accepts. */
const pod = (name: string, image: string) =>
  `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\n  namespace: kube-system\nspec:\n  containers:\n    - name: ${name}\n      image: ${image}\n`;

describe('manifest-sync --once (items 8 and 11)', () => {
  test('a deleted index after an applied generation is exit 4; the last good files stay', async () => {
    const t = await setup('hostile-agent-gone');
    t.put('secure/manifests/a.yaml', pod('a', 'a:1'));
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const dest = mkdtempSync(path.join(os.tmpdir(), 'kp-dest-'));
    const first = await t.run(['manifest-sync', '--once', '--dest', dest, '--no-status']);
    expect(first.code).toBe(0);
    await t.s3.send(new DeleteObjectCommand({ Bucket: t.names.secretsBucket, Key: 'index/secure' }));
    const r = await t.run(['manifest-sync', '--once', '--dest', dest, '--no-status']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/index\/secure is missing, but generation 1 of layer secure was applied here/);
    expect(readFileSync(path.join(dest, 'a.yaml'), 'utf8')).toBe(pod('a', 'a:1'));
    t.aws.destroy();
  });

  test('a missing object version skips that file (its last good copy stays) and applies the rest', async () => {
    const t = await setup('hostile-agent-version');
    t.put('secure/manifests/a.yaml', pod('a', 'a:1'));
    t.put('secure/manifests/b.yaml', pod('b', 'b:1'));
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const dest = mkdtempSync(path.join(os.tmpdir(), 'kp-dest-'));
    expect((await t.run(['manifest-sync', '--once', '--dest', dest, '--no-status'])).code).toBe(0);
    t.put('secure/manifests/a.yaml', pod('a', 'a:2'));
    t.put('secure/manifests/b.yaml', pod('b', 'b:2'));
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const idx = await t.store.readIndex('secure');
    if (!idx || idx === 'not-modified') throw new Error('no index');
    await t.s3.send(
      new DeleteObjectCommand({
        Bucket: t.names.secretsBucket,
        Key: 'secure/manifests/a.yaml',
        VersionId: idx.index.files['manifests/a.yaml']!.versionId,
      }),
    );
    const r = await t.run(['manifest-sync', '--once', '--dest', dest, '--no-status']);
    expect(r.code).toBe(4);
    expect(r.stderr).toMatch(/manifests\/a\.yaml not applied, its last good version stays: .*does not exist/);
    expect(readFileSync(path.join(dest, 'a.yaml'), 'utf8')).toBe(pod('a', 'a:1'));
    expect(readFileSync(path.join(dest, 'b.yaml'), 'utf8')).toBe(pod('b', 'b:2'));
    t.aws.destroy();
  });

  test('--dest that is a file, under a file, or / is refused with exit 2 before the bucket is read', async () => {
    const t = await setup('hostile-agent-dest');
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'kp-dest-')), 'afile');
    writeFileSync(file, 'x');
    for (const dest of [file, path.join(file, 'sub'), '/']) {
      const r = await t.recorded(['manifest-sync', '--once', '--dest', dest, '--no-status']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/--dest .*(is not a directory|refusing to sync into the root directory)/);
      expect(r.requests).toBe(0);
    }
    expect(readFileSync(file, 'utf8')).toBe('x');
    t.aws.destroy();
  });
});

describe('sync-status --wait (item 17)', () => {
  test('--timeout is the total over every layer, and the environment header is printed once', async () => {
    const env = 'hostile-wait';
    const t = await setup(env);
    for (const l of ['common', 'secure', 'compute']) t.put(`${l}/a.txt`, l);
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const ec2 = await t.aws.ec2();
    const images = await ec2.send(new DescribeImagesCommand({}));
    for (const layer of ['secure', 'compute']) {
      await ec2.send(
        new RunInstancesCommand({
          ImageId: images.Images![0]!.ImageId!,
          MinCount: 1,
          MaxCount: 1,
          InstanceType: 't3.micro',
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: 'Environment', Value: env },
                { Key: 'Layer', Value: layer },
                { Key: 'Name', Value: `${env}-${layer}` },
              ],
            },
          ],
        }),
      );
    }
    const t0 = Date.now();
    const r = await t.run(['sync-status', '--wait', '--timeout', '4']);
    const elapsedS = (Date.now() - t0) / 1000;
    expect(r.code).toBe(5);
    // three layers waited for one after another would take 12 s and more
    expect(elapsedS).toBeLessThan(11);
    expect(r.stderr.match(/==> environment hostile-wait/g)).toHaveLength(1);
    expect(r.stdout.match(/Layer/g)).toHaveLength(1);
    t.aws.destroy();
  });
});

describe('upload-secrets --recover (item 9)', () => {
  test('after a corrupted index: recover publishes above every generation and agents converge', async () => {
    const t = await setup('hostile-recover');
    t.put('secure/manifests/a.yaml', pod('a', 'a:1'));
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    t.put('secure/manifests/a.yaml', pod('a', 'a:2'));
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    const dest = mkdtempSync(path.join(os.tmpdir(), 'kp-dest-'));
    expect((await t.run(['manifest-sync', '--once', '--dest', dest, '--no-status'])).code).toBe(0);
    // someone overwrites the index with bytes that do not authenticate
    await t.s3.send(
      new PutObjectCommand({
        Bucket: t.names.secretsBucket,
        Key: 'index/secure',
        Body: Buffer.from('KPE1garbage'),
      }),
    );
    t.put('secure/manifests/a.yaml', pod('a', 'a:3'));
    expect((await t.run(['upload-secrets'])).code).toBe(4);
    // no terminal, no --yes: refused before any request
    const ask = await t.recorded(['upload-secrets', '--recover', '--layer', 'secure']);
    expect(ask.code).toBe(2);
    expect(ask.requests).toBe(0);
    const dry = await t.recorded(['upload-secrets', '--recover', '--layer', 'secure', '--dry-run']);
    expect(dry.code).toBe(0);
    expect(dry.stdout).toMatch(/secure: index version \S+ .*fails: /);
    expect(dry.stdout).toMatch(
      /secure: base generation 2 \(version \S+\); will publish generation 3: 0 added, 1 changed/,
    );
    expect(dry.written).toEqual([]);
    const r = await t.run(['upload-secrets', '--recover', '--layer', 'secure', '--yes']);
    expect([r.code, r.code ? r.stderr : '']).toEqual([0, '']);
    expect(r.stderr).toMatch(/secure: recovered, generation 3 published/);
    const idx = await t.store.readIndex('secure');
    expect(idx !== 'not-modified' && idx?.index.generation).toBe(3);
    // the agent that applied generation 2 moves forward to 3
    const sync = await t.run(['manifest-sync', '--once', '--dest', dest, '--no-status']);
    expect([sync.code, sync.code ? sync.stderr : '']).toEqual([0, '']);
    expect(readFileSync(path.join(dest, 'a.yaml'), 'utf8')).toBe(pod('a', 'a:3'));
    // and publishing works again
    t.put('secure/manifests/a.yaml', pod('a', 'a:4'));
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    t.aws.destroy();
  });

  test('after a deleted index, recover publishes again (conditional on there being none)', async () => {
    const t = await setup('hostile-recover-del');
    t.put('common/a.txt', 'a1');
    expect((await t.run(['upload-secrets'])).code).toBe(0);
    await t.s3.send(new DeleteObjectCommand({ Bucket: t.names.secretsBucket, Key: 'index/common' }));
    expect((await t.run(['upload-secrets'])).code).toBe(4);
    const r = await t.run(['upload-secrets', '--recover', '--layer', 'common', '--yes']);
    expect([r.code, r.code ? r.stderr : '']).toEqual([0, '']);
    expect(r.stdout).toMatch(/fails: deleted/);
    const idx = await t.store.readIndex('common');
    expect(idx !== 'not-modified' && idx?.index.generation).toBe(2);
    expect((await t.run(['fetch-secrets', '--no-kubeconfig'])).code).toBe(0);
    t.aws.destroy();
  });
});
