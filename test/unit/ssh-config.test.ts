import SSHConfig, { type Line, LineType, type Section } from 'ssh-config';
import { UserError } from '../../src/errors.js';
import { collectHost, isHostAddress, parseHost, parseLifetime, parsePort } from '../../src/ssh/args.js';
import {
  ensureInclude,
  envSshPaths,
  envTest,
  INCLUDE_PATTERN,
  renderEnvSshConfig,
} from '../../src/ssh/config.js';
import {
  ec2PrivateDnsPattern,
  matchesSshPatterns,
  privateHostPatterns,
  sshPatternsForCidr,
} from '../../src/ssh/patterns.js';

describe('sshPatternsForCidr', () => {
  test('octet-aligned prefixes are one pattern', () => {
    expect(sshPatternsForCidr('10.0.0.0/8')).toEqual(['10.*']);
    expect(sshPatternsForCidr('10.80.0.0/16')).toEqual(['10.80.*']);
    expect(sshPatternsForCidr('10.80.10.0/24')).toEqual(['10.80.10.*']);
    expect(sshPatternsForCidr('10.80.10.7/32')).toEqual(['10.80.10.7']);
  });

  test('other prefixes list the blocks of the next octet boundary, exactly', () => {
    const p20 = sshPatternsForCidr('10.80.16.0/20');
    expect(p20).toHaveLength(16);
    expect([p20[0], p20[15]]).toEqual(['10.80.16.*', '10.80.31.*']);
    const p12 = sshPatternsForCidr('172.16.0.0/12');
    expect([p12.length, p12[0], p12[15]]).toEqual([16, '172.16.*', '172.31.*']);
    expect(sshPatternsForCidr('10.80.10.16/28')).toEqual(
      Array.from({ length: 16 }, (_, i) => `10.80.10.${16 + i}`),
    );
    expect(sshPatternsForCidr('10.80.0.0/17')).toHaveLength(128);
  });

  test('the patterns match the addresses inside and none outside', () => {
    const p = sshPatternsForCidr('10.80.16.0/20');
    expect(matchesSshPatterns('10.80.16.1', p)).toBe(true);
    expect(matchesSshPatterns('10.80.31.254', p)).toBe(true);
    expect(matchesSshPatterns('10.80.15.255', p)).toBe(false);
    expect(matchesSshPatterns('10.80.32.0', p)).toBe(false);
    expect(matchesSshPatterns('110.80.16.1', p)).toBe(false);
  });

  test('refuses what is not an IPv4 CIDR of /8 or longer', () => {
    expect(() => sshPatternsForCidr('10.80.0.1/16')).toThrow(/not an IPv4 CIDR/);
    expect(() => sshPatternsForCidr('0.0.0.0/0')).toThrow(/not an IPv4 CIDR/);
    expect(() => sshPatternsForCidr('banana')).toThrow(/not an IPv4 CIDR/);
  });

  test("EC2 private DNS names of the region (us-east-1's differ)", () => {
    expect(ec2PrivateDnsPattern('eu-west-1')).toBe('*.eu-west-1.compute.internal');
    expect(ec2PrivateDnsPattern('us-east-1')).toBe('*.ec2.internal');
    const p = privateHostPatterns({ vpcCidr: '10.80.0.0/16', region: 'eu-west-1' });
    expect(p).toEqual(['10.80.*', '*.eu-west-1.compute.internal']);
    expect(matchesSshPatterns('IP-10-80-10-12.EU-WEST-1.compute.internal', p)).toBe(true);
    expect(matchesSshPatterns('ip-10-80-10-12.eu-west-2.compute.internal', p)).toBe(false);
  });
});

const input = {
  env: 'play',
  bastion: { host: '203.0.113.7', port: 22 },
  user: 'ubuntu',
  identityFile: '/work/secrets/play/locked/ssh/play',
  knownHostsFile: '/home/alice/.ssh/kube-platform/play.known_hosts',
  privatePatterns: ['10.80.*', '*.eu-west-1.compute.internal'],
  privatePort: 22,
};

const TEST = `/bin/sh -c 'test x\${PLATFORM_SSH_ENV:-$PLATFORM_ENV} = xplay'`;

describe('renderEnvSshConfig', () => {
  test('golden text', () => {
    const bastion = `  HostName 203.0.113.7
  Port 22
  User ubuntu
  IdentityFile /work/secrets/play/locked/ssh/play
  IdentitiesOnly yes
  UserKnownHostsFile /home/alice/.ssh/kube-platform/play.known_hosts
  StrictHostKeyChecking yes
  ForwardAgent yes
  HostKeyAlias bastion-play
`;
    expect(
      renderEnvSshConfig(input),
    ).toBe(`# kube-platform: ssh for environment play, written by \`agent-setup -e play\` (rewritten on every run).
# \`ssh bastion-play\` always works; \`ssh bastion\` and \`ssh <private address>\` in a shell where
# PLATFORM_SSH_ENV (else PLATFORM_ENV) is play. Agent forwarding to the bastion only.

Host bastion-play
${bastion}
Match originalhost bastion exec "${TEST}"
${bastion}
Match originalhost 10.80.*,*.eu-west-1.compute.internal exec "${TEST}"
  ProxyJump bastion-play
  Port 22
  User ubuntu
  IdentityFile /work/secrets/play/locked/ssh/play
  IdentitiesOnly yes
  UserKnownHostsFile /home/alice/.ssh/kube-platform/play.known_hosts
  StrictHostKeyChecking yes
  ForwardAgent no
`);
  });

  test('ForwardAgent yes only on the bastion entries; private hosts jump through the bastion', () => {
    const parsed = SSHConfig.parse(
      renderEnvSshConfig({
        ...input,
        bastion: { host: 'bastion.example.com', port: 2222 },
        privatePort: 2200,
      }),
    );
    const sections = [...parsed].filter(
      (l: Line): l is Section => l.type === LineType.DIRECTIVE && 'config' in l,
    );
    const get = (s: Section, param: string) =>
      [...s.config].find((l) => l.type === LineType.DIRECTIVE && l.param === param) as
        | { value: string }
        | undefined;
    expect(
      sections.map((s) => [
        s.param,
        get(s, 'ForwardAgent')?.value,
        get(s, 'ProxyJump')?.value,
        get(s, 'Port')?.value,
      ]),
    ).toEqual([
      ['Host', 'yes', undefined, '2222'],
      ['Match', 'yes', undefined, '2222'],
      ['Match', 'no', 'bastion-play', '2200'],
    ]);
    for (const s of sections) {
      expect(get(s, 'StrictHostKeyChecking')?.value).toBe('yes');
      expect(get(s, 'IdentitiesOnly')?.value).toBe('yes');
    }
  });

  test('paths with spaces are quoted; paths ssh would misread are refused', () => {
    const text = renderEnvSshConfig({
      ...input,
      identityFile: '/Users/Al Ice/key',
      knownHostsFile: '/Users/Al Ice/kh',
    });
    expect(text).toContain('  IdentityFile "/Users/Al Ice/key"\n');
    expect(text).toContain('  UserKnownHostsFile "/Users/Al Ice/kh"\n');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: ssh's own ${VAR} expansion in paths
    for (const bad of ['/a"b/key', '/a%d/key', '/a${HOME}/key', 'relative/key', '/a\nHost */key']) {
      expect(() => renderEnvSshConfig({ ...input, identityFile: bad })).toThrow(UserError);
    }
  });

  test('the environment test runs under /bin/sh whatever the login shell', () => {
    expect(envTest('prod')).toBe(`/bin/sh -c 'test x\${PLATFORM_SSH_ENV:-$PLATFORM_ENV} = xprod'`);
  });

  test('paths follow $HOME', () => {
    expect(envSshPaths('prod', '/h')).toEqual({
      sshDir: '/h/.ssh',
      userConfig: '/h/.ssh/config',
      dir: '/h/.ssh/kube-platform',
      config: '/h/.ssh/kube-platform/prod.config',
      knownHosts: '/h/.ssh/kube-platform/prod.known_hosts',
    });
  });
});

describe('ensureInclude', () => {
  const HEAD = `# kube-platform environments (agent-setup); keep this line above any Host or option\nInclude ${INCLUDE_PATTERN}\n`;

  test('a missing or empty file gets the line', () => {
    expect(ensureInclude('')).toEqual({ text: HEAD, changed: true });
    expect(ensureInclude('\n\n')).toEqual({ text: HEAD, changed: true });
  });

  test('the line goes on top; the rest of the file is kept byte for byte', () => {
    const mine = 'Host=foo\n\tHostName=bar # trailing comment\nHost *\n  ForwardAgent yes\n';
    const r = ensureInclude(mine);
    expect(r).toEqual({ text: `${HEAD}\n${mine}`, changed: true });
    expect(ensureInclude(r.text)).toEqual({ text: r.text, changed: false });
  });

  test('behind other Includes and comments it counts as at the top', () => {
    const text = `# mine\nInclude ~/.orbstack/ssh/config\ninclude ${INCLUDE_PATTERN}\n\nHost a\n  User b\n`;
    expect(ensureInclude(text)).toEqual({ text, changed: false });
  });

  test('below a top-level option or inside a Host block it is moved to the top', () => {
    const text = `ForwardAgent yes\nInclude ${INCLUDE_PATTERN}\nHost a\n  Include ${INCLUDE_PATTERN}\n  User b\n`;
    expect(ensureInclude(text)).toEqual({
      text: `${HEAD}\nForwardAgent yes\nHost a\n  User b\n`,
      changed: true,
    });
  });

  test('duplicates of the line are removed, the first at the top kept', () => {
    const text = `Include ${INCLUDE_PATTERN}\nInclude ${INCLUDE_PATTERN}\nHost a\n  User b\n`;
    expect(ensureInclude(text)).toEqual({
      text: `Include ${INCLUDE_PATTERN}\nHost a\n  User b\n`,
      changed: true,
    });
  });

  test('CRLF files stay CRLF; a commented-out Include is not ours', () => {
    const text = `# Include ${INCLUDE_PATTERN}\r\nHost a\r\n  User b\r\n`;
    expect(ensureInclude(text).text).toBe(`${HEAD.replace(/\n/g, '\r\n')}\r\n${text}`);
  });
});

describe('flag values', () => {
  test('hosts: IPs and names only', () => {
    for (const ok of [
      '127.0.0.1',
      '10.80.10.12',
      '::1',
      'bastion.example.com',
      'localhost',
      'ip-10-80-10-12.eu-west-1.compute.internal',
    ]) {
      expect(isHostAddress(ok)).toBe(true);
    }
    for (const bad of [
      '',
      '10.80.10',
      '999.1.1.1',
      'a b',
      'x;id',
      '-oProxyCommand=id',
      'host\nHost *',
      '"q"',
      'a..b',
    ]) {
      expect(isHostAddress(bad)).toBe(false);
    }
    expect(() => parseHost('x;id')).toThrow(/must be an IP address or a host name/);
    expect(collectHost('10.80.10.13', collectHost('10.80.10.12', undefined))).toEqual([
      '10.80.10.12',
      '10.80.10.13',
    ]);
  });

  test('ports and lifetimes', () => {
    expect(parsePort('22')).toBe(22);
    for (const bad of ['0', '65536', '22a', '-1', '']) expect(() => parsePort(bad)).toThrow(/TCP port/);
    for (const ok of ['8h', '90m', '1h30m', '3600', '1w']) expect(parseLifetime(ok)).toBe(ok);
    for (const bad of ['0', '0h0m', '8 hours', 'h', '-5m', ''])
      expect(() => parseLifetime(bad)).toThrow(/positive ssh time/);
  });
});
