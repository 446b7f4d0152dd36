import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseEnvironment } from '../../src/config/load.js';
import { etcdMembers } from '../../src/config/topology.js';
import { ConflictError } from '../../src/errors.js';
import { envSshPaths } from '../../src/ssh/config.js';
import {
  chooseTunnelMember,
  describeRoute,
  ETCD_CLIENT_PORT,
  openBastionTunnel,
  tunnelArgs,
} from '../../src/ssh/tunnel.js';
import { loopbackEnvFile } from '../helpers/sshd.js';

/** The argument building and the member choice of `--etcd-via-bastion` (src/ssh/tunnel.ts). */

const input = {
  configFile: '/home/op/.ssh/kube-platform/prod.config',
  alias: 'bastion-prod',
  localPort: 40123,
  remoteHost: '10.80.10.10',
  remotePort: ETCD_CLIENT_PORT,
};

test('the ssh command line: only the environment config, no command, no prompt, exit on a failed forward', () => {
  const a = tunnelArgs(input);
  expect(a.slice(0, 3)).toEqual(['-F', '/home/op/.ssh/kube-platform/prod.config', '-N']);
  const opts = a.flatMap((x, i) => (a[i - 1] === '-o' ? [x] : []));
  expect(opts).toEqual(
    expect.arrayContaining([
      'BatchMode=yes',
      'ExitOnForwardFailure=yes',
      'ForwardAgent=no',
      'ConnectTimeout=10',
    ]),
  );
  // the forward listens on loopback only, to the member's ENI address and client port
  expect(a[a.indexOf('-L') + 1]).toBe('127.0.0.1:40123:10.80.10.10:2379');
  // the destination is the alias of the config (its pinned host key), last
  expect(a.at(-1)).toBe('bastion-prod');
  // nothing else: no identity file, password or key material on the command line (ps shows it)
  expect(a.filter((x) => /^-[iAWwRDJ]$/.test(x) || /-----BEGIN|IdentityFile|Password/i.test(x))).toEqual([]);
  expect(a.filter((x) => x.startsWith('-') && !['-F', '-N', '-o', '-L'].includes(x))).toEqual([]);
  expect(tunnelArgs({ ...input, connectTimeoutS: 3 })).toContain('ConnectTimeout=3');
});

const cfg = parseEnvironment(
  'prod',
  loopbackEnvFile()
    .replace('AVAILABILITY_ZONES=eu-west-1a', 'AVAILABILITY_ZONES=eu-west-1a,eu-west-1b,eu-west-1c')
    .replace('SECURE_SUBNETS=127.0.10.0/24', 'SECURE_SUBNETS=127.0.10.0/24,127.0.11.0/24,127.0.12.0/24')
    .replace('COMPUTE_SUBNETS=127.0.20.0/24', 'COMPUTE_SUBNETS=127.0.20.0/24,127.0.21.0/24,127.0.22.0/24')
    .replace('ELB_SUBNETS=127.0.100.0/24', 'ELB_SUBNETS=127.0.100.0/24,127.0.101.0/24,127.0.102.0/24')
    .replace('MGMT_SUBNETS=127.0.110.0/24', 'MGMT_SUBNETS=127.0.110.0/24,127.0.111.0/24,127.0.112.0/24'),
  'environments/prod.env',
);
const members = etcdMembers(cfg);

test.each([
  [[], 'etcd-0'],
  [['etcd-0'], 'etcd-1'],
  [['etcd-1', 'etcd-0'], 'etcd-2'],
  // every member is replaced: the one that goes down last (its gate runs while it is up)
  [['etcd-2', 'etcd-0', 'etcd-1'], 'etcd-1'],
])('the tunnel leads to a member the roll does not replace: replaced %j → %s', (avoid, chosen) => {
  expect(members.map((m) => m.name)).toEqual(['etcd-0', 'etcd-1', 'etcd-2']);
  expect(chooseTunnelMember(members, avoid).name).toBe(chosen);
});

test('the route as --plan names it: bastion alias, config file, member and address', () => {
  const home = '/home/op';
  expect(describeRoute('prod', members[1]!, 2379, home)).toBe(
    'an ssh tunnel through bastion-prod (/home/op/.ssh/kube-platform/prod.config) to etcd-1 127.0.11.10:2379',
  );
});

test('agent-setup not run: ConflictError (exit 3) naming the missing config file and the fix; ssh never started', async () => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'kp-tunnel-unit-'));
  const err = await openBastionTunnel({
    env: 'prod',
    member: members[0]!,
    home,
    ssh: '/nonexistent/ssh-must-not-run',
  }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ConflictError);
  expect((err as ConflictError).exitCode).toBe(3);
  expect((err as Error).message).toContain(`${envSshPaths('prod', home).config} does not exist`);
  expect((err as ConflictError).hint).toContain('eval "$(agent-setup -e prod)"');
});
