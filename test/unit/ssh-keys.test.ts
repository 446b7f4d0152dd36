import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { InstanceRow } from '../../src/aws/inventory.js';
import { exec } from '../../src/exec/index.js';
import { agentEvalLines, parseAgentOutput, shellWord } from '../../src/ssh/agent.js';
import { pickBastion, privateNodes } from '../../src/ssh/inventory.js';
import {
  fingerprint,
  type HostKey,
  isValidHostKey,
  knownHostsName,
  parseConsoleHostKeys,
  parseKeyscan,
  pinHostKeys,
} from '../../src/ssh/known-hosts.js';

let dir: string;
let ed25519: HostKey;
let ecdsa: HostKey;

/** A fresh public key of `type`, generated now (ssh-keygen), with its ssh-keygen fingerprint. */
async function newKey(type: string, name: string): Promise<{ key: HostKey; fp: string }> {
  const file = path.join(dir, name);
  await exec('ssh-keygen', ['-q', '-t', type, '-N', '', '-C', '', '-f', file], { cwd: dir });
  const [t, k] = readFileSync(`${file}.pub`, 'utf8').trim().split(/\s+/);
  const fp = (
    await exec('ssh-keygen', ['-l', '-E', 'sha256', '-f', `${file}.pub`], { cwd: dir })
  ).stdout.split(/\s+/)[1]!;
  return { key: { type: t!, key: k! }, fp };
}

let ed25519Fp: string;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'kp-ssh-unit-'));
  ({ key: ed25519, fp: ed25519Fp } = await newKey('ed25519', 'a'));
  ({ key: ecdsa } = await newKey('ecdsa', 'b'));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('ssh-agent output and eval lines', () => {
  test('parses ssh-agent -s', () => {
    const out =
      'SSH_AUTH_SOCK=/tmp/ssh-XXXXabcd/agent.41; export SSH_AUTH_SOCK;\nSSH_AGENT_PID=42; export SSH_AGENT_PID;\necho Agent pid 42;\n';
    expect(parseAgentOutput(out)).toEqual({ sock: '/tmp/ssh-XXXXabcd/agent.41', pid: 42 });
    expect(() => parseAgentOutput('echo Agent pid 42;\n')).toThrow(/unexpected output from ssh-agent/);
  });

  test('eval lines in ssh-agent format, quoting what a shell would split', () => {
    expect(agentEvalLines({ sock: '/tmp/ssh-X/agent.41', pid: 42 }, 'prod')).toBe(
      'SSH_AUTH_SOCK=/tmp/ssh-X/agent.41; export SSH_AUTH_SOCK;\nSSH_AGENT_PID=42; export SSH_AGENT_PID;\nPLATFORM_SSH_ENV=prod; export PLATFORM_SSH_ENV;\n',
    );
    expect(agentEvalLines({ sock: "/run/user/1000/it's here" }, 'prod')).toBe(
      "SSH_AUTH_SOCK='/run/user/1000/it'\\''s here'; export SSH_AUTH_SOCK;\nPLATFORM_SSH_ENV=prod; export PLATFORM_SSH_ENV;\n",
    );
  });

  test('shellWord round-trips through sh', async () => {
    for (const s of ['plain/path.sock', "it's", 'a b$c`d`"e"', '$(id)']) {
      const r = await exec('sh', ['-c', `printf %s ${shellWord(s)}`], { cwd: dir });
      expect(r.stdout).toBe(s);
    }
  });
});

describe('host keys', () => {
  test('validation checks type, base64 and the blob’s own type name', () => {
    expect(isValidHostKey(ed25519)).toBe(true);
    expect(isValidHostKey(ecdsa)).toBe(true);
    expect(isValidHostKey({ type: 'ssh-rsa', key: ed25519.key })).toBe(false);
    expect(isValidHostKey({ type: 'ssh-ed25519', key: 'bm90IGEga2V5' })).toBe(false);
    expect(isValidHostKey({ type: 'ssh-dss', key: ed25519.key })).toBe(false);
    expect(isValidHostKey({ type: 'ssh-ed25519', key: `${ed25519.key} extra` })).toBe(false);
  });

  test('fingerprints equal ssh-keygen -l', () => {
    expect(fingerprint(ed25519)).toBe(ed25519Fp);
  });

  test('known_hosts names carry non-standard ports', () => {
    expect(knownHostsName('10.80.10.12', 22)).toBe('10.80.10.12');
    expect(knownHostsName('10.80.10.12', 2222)).toBe('[10.80.10.12]:2222');
  });

  test('ssh-keyscan output is parsed strictly', () => {
    const line = (n: string, k: HostKey) => `${n} ${k.type} ${k.key}`;
    const text = `# 10.80.10.12:22 SSH-2.0-OpenSSH_9.6\n${line('10.80.10.12', ed25519)}\n${line('10.80.10.12', ecdsa)}\n${line('10.80.10.12', ecdsa)}\n`;
    expect(parseKeyscan(text, ['10.80.10.12', '10.80.10.13'])).toEqual(
      new Map([['10.80.10.12', [ed25519, ecdsa]]]),
    );
    for (const bad of [
      `@cert-authority * ${ed25519.type} ${ed25519.key}`,
      line('10.80.10.99', ed25519),
      line('*', ed25519),
      `${line('10.80.10.12', ed25519)} comment`,
      `10.80.10.12 ssh-ed25519 bm90IGEga2V5`,
    ]) {
      expect(() => parseKeyscan(bad, ['10.80.10.12'])).toThrow(/unexpected ssh-keyscan output/);
    }
  });

  test("cloud-init's console block: the last complete one, prefixes tolerated, junk ignored", () => {
    const console = [
      '[   10.1] cloud-init[512]: old boot',
      '-----BEGIN SSH HOST KEY KEYS-----',
      `${ecdsa.type} ${ecdsa.key} root@old`,
      '-----END SSH HOST KEY KEYS-----',
      'ec2: #############################################################',
      'ec2: -----BEGIN SSH HOST KEY FINGERPRINTS-----',
      `ec2: 256 ${ed25519Fp} root@ip-10-80-110-5 (ED25519)`,
      'ec2: -----END SSH HOST KEY FINGERPRINTS-----',
      '[   25.3] cloud-init[777]: -----BEGIN SSH HOST KEY KEYS-----',
      `[   25.3] cloud-init[777]: ${ed25519.type} ${ed25519.key} root@ip-10-80-110-5`,
      `ssh-dss AAAAB3NzaC1kc3MAAACBAP root@ip-10-80-110-5`,
      'garbage line',
      `${ecdsa.type} ${ecdsa.key}`,
      '[   25.3] cloud-init[777]: -----END SSH HOST KEY KEYS-----',
      '-----BEGIN SSH HOST KEY KEYS-----',
      'truncated, no end',
    ].join('\r\n');
    expect(parseConsoleHostKeys(console)).toEqual([ed25519, ecdsa]);
    expect(parseConsoleHostKeys('no keys here\n')).toEqual([]);
  });

  test('pinning replaces a name’s keys, keeps the others, reports changes; ssh-keygen reads the file', async () => {
    const file = path.join(dir, 'sub', 'env.known_hosts');
    const first = await pinHostKeys(
      file,
      new Map([
        ['bastion-play', [ed25519]],
        ['[10.80.10.12]:2222', [ecdsa]],
      ]),
    );
    expect(first.map((r) => [r.name, r.changed, r.previous.length])).toEqual([
      ['bastion-play', false, 0],
      ['[10.80.10.12]:2222', false, 0],
    ]);
    const again = await pinHostKeys(file, new Map([['bastion-play', [ed25519]]]));
    expect(again[0]!.changed).toBe(false);
    const replaced = await pinHostKeys(file, new Map([['bastion-play', [ecdsa]]]));
    expect(replaced[0]).toMatchObject({ changed: true, previous: [ed25519], keys: [ecdsa] });
    expect(readFileSync(file, 'utf8')).toBe(
      `[10.80.10.12]:2222 ${ecdsa.type} ${ecdsa.key}\nbastion-play ${ecdsa.type} ${ecdsa.key}\n`,
    );
    const found = await exec('ssh-keygen', ['-F', '[10.80.10.12]:2222', '-f', file], { cwd: dir });
    expect(found.stdout).toContain(ecdsa.key);
    await expect(pinHostKeys(file, new Map([['x', [{ type: 'ssh-ed25519', key: 'bm90' }]]]))).rejects.toThrow(
      /no valid host key/,
    );
  });
});

describe('inventory', () => {
  const row = (over: Partial<InstanceRow>): InstanceRow => ({
    name: 'prod-worker',
    privateIp: '10.80.20.5',
    publicIp: null,
    instanceId: 'i-1',
    state: 'running',
    availabilityZone: 'eu-west-1a',
    layer: 'compute',
    ...over,
  });

  test('the bastion is the running one with a public IP, by Layer tag or name', () => {
    const rows = [
      row({
        name: 'prod-bastion',
        layer: 'bastion',
        publicIp: '203.0.113.1',
        state: 'stopped',
        instanceId: 'i-old',
      }),
      row({ name: 'prod-bastion', layer: null, publicIp: '203.0.113.2', instanceId: 'i-b1' }),
      row({ name: 'other', layer: 'bastion', publicIp: '203.0.113.3', instanceId: 'i-b2' }),
      row({ name: 'prod-master', layer: 'secure', privateIp: '10.80.10.5', instanceId: 'i-m' }),
      row({ name: 'prod-worker', privateIp: null, instanceId: 'i-w-pending', state: 'pending' }),
    ];
    const picked = pickBastion(rows, 'prod');
    expect(picked?.bastion.instanceId).toBe('i-b1');
    expect(picked?.others.map((r) => r.instanceId)).toEqual(['i-b2']);
    expect(
      pickBastion(
        rows.filter((r) => r.layer !== 'bastion' && r.name !== 'prod-bastion'),
        'prod',
      ),
    ).toBeUndefined();
    expect(privateNodes(rows, 'prod').map((r) => r.instanceId)).toEqual(['i-m']);
  });
});

describe('repinBastion (after roll bastion)', () => {
  test('waits for the console host keys, then replaces the old pin with the new key', async () => {
    const { repinBastion } = await import('../../src/ssh/repin.js');
    const { pinnedKeys } = await import('../../src/ssh/known-hosts.js');
    const file = path.join(dir, 'repin.known_hosts');
    await pinHostKeys(file, new Map([['bastion-prod', [ecdsa]]]));
    let reads = 0;
    let clock = 0;
    const r = await repinBastion({
      env: 'prod',
      instanceId: 'i-new',
      knownHosts: file,
      // EC2 publishes the console output a few minutes after boot: two empty reads first
      readKeys: async (id) => {
        expect(id).toBe('i-new');
        return ++reads < 3 ? [] : [ed25519];
      },
      timeoutS: 60,
      pollS: 5,
      sleep: async (ms) => {
        clock += ms;
      },
      now: () => clock,
    });
    expect(reads).toBe(3);
    expect(clock).toBe(10_000);
    expect(r).toMatchObject({ name: 'bastion-prod', changed: true, previous: [ecdsa], keys: [ed25519] });
    expect(await pinnedKeys(file, 'bastion-prod')).toEqual([ed25519]);
  });

  test('no key within the timeout: undefined, and the old pin stays (ssh refuses the new bastion)', async () => {
    const { repinBastion } = await import('../../src/ssh/repin.js');
    const { pinnedKeys } = await import('../../src/ssh/known-hosts.js');
    const file = path.join(dir, 'repin-timeout.known_hosts');
    await pinHostKeys(file, new Map([['bastion-prod', [ecdsa]]]));
    let clock = 0;
    let reads = 0;
    const r = await repinBastion({
      env: 'prod',
      instanceId: 'i-new',
      knownHosts: file,
      readKeys: async () => {
        reads++;
        return [];
      },
      timeoutS: 12,
      pollS: 5,
      sleep: async (ms) => {
        clock += ms;
      },
      now: () => clock,
    });
    expect(r).toBeUndefined();
    // reads at 0, 5 and 10 s; the next would be past 12 s
    expect(reads).toBe(3);
    expect(await pinnedKeys(file, 'bastion-prod')).toEqual([ecdsa]);
  });
});
