import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { checkSnapshotHash } from '../../src/backup/gateway.js';
import {
  type LocalMember,
  planLocalMembers,
  startLocalMembers,
  stopLocalMembers,
} from '../../src/backup/member.js';
import { BackupStore } from '../../src/backup/store.js';
import { exec } from '../../src/exec/index.js';
import { setLogSink } from '../../src/log.js';
import { toolkitRoot } from '../../src/paths.js';
import { bootstrapEnvironment, type TestEnvironment } from '../helpers/env.js';
import { putAll } from '../helpers/etcd.js';
import { useMoto } from '../helpers/moto.js';
import { renderUserData, type WriteFile } from '../helpers/user-data.js';

/**
 * The masters' etcd backup timer: kp-etcd-backup.service/.timer in the masters' user data
 * only, rendered by terraform from the environment's ETCD_BACKUP_* keys, accepted by
 * systemd; and the command it runs — the node agent's bundle, `etcd-backup now --elect` —
 * run for real by three "masters" in the same slot against real etcd and the local AWS:
 * exactly one snapshot is taken.
 */
const SERVICE = '/etc/systemd/system/kp-etcd-backup.service';
const TIMER = '/etc/systemd/system/kp-etcd-backup.timer';
const moto = useMoto({ resetEach: false });
let work: string;
let userData: Record<'masters' | 'workers' | 'bastion', string>;
let files: Map<string, WriteFile>;
let runcmd: string[][];
let restoreLog: () => void;

beforeAll(async () => {
  restoreLog = setLogSink(() => {});
  work = await mkdtemp(path.join(os.tmpdir(), 'kp-backup-timer-'));
  ({ userData } = await renderUserData(
    work,
    '\nETCD_BACKUP_INTERVAL_MINUTES=10\nETCD_BACKUP_DAILY_DAYS=30\n',
  ));
  const master = parseYaml(userData.masters) as { write_files: WriteFile[]; runcmd: string[][] };
  files = new Map(master.write_files.map((f) => [f.path, f]));
  runcmd = master.runcmd;
}, 120_000);

afterAll(async () => {
  restoreLog();
  await rm(work, { recursive: true, force: true });
});

test('masters get the service and the timer, enabled, with the environment file’s interval and retention', () => {
  const service = files.get(SERVICE)!.content;
  const exec = service.split('\n').find((l) => l.startsWith('ExecStart='))!;
  expect(exec).toContain('/opt/kube-platform/manifest-sync.mjs etcd-backup now --environment play-ci');
  expect(exec).toContain('--bucket kp-play-ci-123456789012-eu-west-1-secrets --region eu-west-1');
  expect(exec).toContain('--elect --interval-minutes 10 --keep-all-hours 1 --hourly-days 7 --daily-days 30');
  expect(exec).toContain('--cert /etc/kubernetes/pki/apiserver-etcd-client.crt');
  expect(files.get(TIMER)!.content).toContain('OnCalendar=*:0/10\n');
  expect(runcmd.filter((c) => c[1] === 'enable').flat()).toContain('kp-etcd-backup.timer');
  for (const role of ['workers', 'bastion'] as const) expect(userData[role]).not.toContain('kp-etcd-backup');
});

test('systemd accepts the service and the timer (systemd-analyze verify)', async () => {
  const dir = path.join(work, 'units');
  await exec('mkdir', ['-p', dir], { cwd: work });
  const service = files.get(SERVICE)!.content.replace('ExecStartPre=+/usr/local/sbin/kp-fetch-agent\n', '');
  await writeFile(path.join(dir, 'kp-etcd-backup.service'), service);
  await writeFile(path.join(dir, 'kp-etcd-backup.timer'), files.get(TIMER)!.content);
  const r = await exec(
    'systemd-analyze',
    ['verify', '--man=no', '--generators=no', 'kp-etcd-backup.service', 'kp-etcd-backup.timer'],
    { cwd: dir, reject: false },
  );
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
});

const DROP_IN = '/etc/systemd/system/manifest-sync@secure.service.d/etcd-snapshot.conf';

test('masters’ secure agent gets the pre-rollout snapshot drop-in: the timer’s member and certificates, no memory limit', () => {
  const dropIn = files.get(DROP_IN)!.content;
  const env = new Map(
    dropIn
      .split('\n')
      .filter((l) => l.startsWith('Environment='))
      .map((l) => l.slice('Environment='.length).split('=') as [string, string]),
  );
  const timer = files
    .get(SERVICE)!
    .content.split('\n')
    .find((l) => l.startsWith('ExecStart='))!;
  const flag = (name: string) => timer.match(new RegExp(`--${name} (\\S+)`))![1];
  expect(Object.fromEntries(env)).toEqual({
    KP_ETCD_ENDPOINT: flag('endpoint'),
    KP_ETCD_CACERT: flag('cacert'),
    KP_ETCD_CERT: flag('cert'),
    KP_ETCD_KEY: flag('key'),
    KP_ETCD_MEMBER: flag('member'),
  });
  expect(dropIn).toContain('\nMemoryMax=infinity\n');
  for (const role of ['workers', 'bastion'] as const) expect(userData[role]).not.toContain('KP_ETCD_');
});

test('systemd accepts manifest-sync@secure.service with the drop-in (systemd-analyze verify)', async () => {
  const dir = path.join(work, 'agent-units');
  await exec('mkdir', ['-p', path.join(dir, 'manifest-sync@secure.service.d')], { cwd: work });
  const unit = files
    .get('/etc/systemd/system/manifest-sync@.service')!
    .content.replace('/usr/local/sbin/kp-fetch-agent', '/bin/true');
  await writeFile(path.join(dir, 'manifest-sync@.service'), unit);
  const verify = async (dropIn: string) => {
    await writeFile(path.join(dir, 'manifest-sync@secure.service.d', 'etcd-snapshot.conf'), dropIn);
    return exec(
      'systemd-analyze',
      ['verify', '--man=no', '--generators=no', 'manifest-sync@secure.service'],
      {
        cwd: dir,
        reject: false,
        // the unit and its drop-in directory are found on this search path (":" appends the defaults)
        env: { SYSTEMD_UNIT_PATH: `${dir}:` },
      },
    );
  };
  const r = await verify(files.get(DROP_IN)!.content);
  expect(r.stderr).toBe('');
  expect(r.exitCode).toBe(0);
  // the drop-in is read: a misspelt key in it is reported
  const bad = await verify(`${files.get(DROP_IN)!.content}MemoryMaxx=1\n`);
  expect(bad.stderr).toContain("Unknown key 'MemoryMaxx' in section [Service]");
});

describe('the bundled agent’s etcd-backup now --elect, three masters in one slot', () => {
  let env: TestEnvironment;
  let member: LocalMember[] = [];
  beforeAll(async () => {
    env = await bootstrapEnvironment(moto.endpoint, 'tm-test');
    member = await planLocalMembers(['m'], path.join(work, 'etcd'));
    await startLocalMembers(member, { token: 'timer-test', logDir: work });
    await putAll(member[0]!, new Map([['/k', 'v']]));
  }, 60_000);
  afterAll(async () => {
    await stopLocalMembers(member);
    env?.aws.destroy();
  });

  test('exactly one snapshot is taken; the others log that another master has the slot', async () => {
    const bundle = path.join(toolkitRoot(), 'dist', 'agent', 'manifest-sync.mjs');
    const args = (name: string) => [
      bundle,
      'etcd-backup',
      'now',
      ...['--environment', 'tm-test', '--bucket', env.names.secretsBucket, '--region', 'eu-west-1'],
      ...['--endpoint', member[0]!.clientUrl, '--member', name, '--elect', '--interval-minutes', '60'],
    ];
    const runs = await Promise.all(
      ['etcd-a', 'etcd-b', 'etcd-c'].map((n) =>
        exec(process.execPath, args(n), { cwd: work, env: moto.env, reject: false }),
      ),
    );
    expect(runs.map((r) => r.exitCode)).toEqual([0, 0, 0]);
    const took = runs.filter((r) => /backups\/etcd\/\d{8}T\d{6}\.\d{3}Z-etcd-[abc]\.db/.test(r.stdout));
    expect(took).toHaveLength(1);
    expect(runs.filter((r) => r.stderr.includes('another master takes this snapshot'))).toHaveLength(2);
    const store = new BackupStore({
      s3: await env.aws.s3(),
      keys: env.keys,
      bucket: env.names.secretsBucket,
      environment: 'tm-test',
      kmsKeyId: env.kmsKeyArn,
    });
    const list = await store.list();
    expect(list).toHaveLength(1);
    const { snapshot } = await store.download(list[0]!.key);
    expect(() => checkSnapshotHash(snapshot)).not.toThrow();
    expect(snapshot.length).toBeGreaterThan(4096);
  }, 120_000);
});
