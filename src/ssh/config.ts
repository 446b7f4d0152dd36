import os from 'node:os';
import path from 'node:path';
import SSHConfig, { type Directive, type Line, LineType } from 'ssh-config';
import { UserError } from '../errors.js';

/**
 * The operator's ssh configuration for an environment (pure: text in, text out).
 *
 * ## Scheme
 *
 * `~/.ssh/config` gets one line at the top, `Include ~/.ssh/kube-platform/*.config`, so
 * every environment's file `~/.ssh/kube-platform/<env>.config` is read, before the user's
 * own `Host *` defaults (ssh uses the first value it obtains for each option:
 * ssh_config(5)). Each file has three blocks:
 *
 * 1. `Host bastion-<env>`: this environment's bastion under a name no other environment
 *    uses; always active, and the jump host of block 3.
 * 2. `Match originalhost bastion exec "<env test>"`: the short name `ssh bastion`, with the
 *    same settings as block 1.
 * 3. `Match originalhost <VPC patterns>,<EC2 private DNS pattern> exec "<env test>"`:
 *    private hosts, reached by `ProxyJump bastion-<env>`.
 *
 * The env test `/bin/sh -c 'test x${PLATFORM_SSH_ENV:-$PLATFORM_ENV} = x<env>'` makes the
 * generic names (`bastion`, `10.80.10.12`) mean the environment of the shell they are typed
 * in: PLATFORM_ENV is set by run.kube/play.kube for the environment's shell, and
 * `eval "$(agent-setup -e <env>)"` exports PLATFORM_SSH_ENV=<env> for any other shell. Two
 * environments may well share a VPC range (10.80.0.0/16 in play and prod), so private
 * patterns must never be active for two environments at once, and two terminals on
 * different environments must not steer each other (which rules out a global "current
 * environment" symlink). ssh skips `exec` once an earlier criterion of the same line
 * failed, so the shell only runs for host names that match. Outside such a shell,
 * `ssh bastion-<env>` still works.
 *
 * Security (DESIGN.md §7): agent forwarding only to the bastion (`ForwardAgent yes` in
 * blocks 1-2, `no` in block 3); private hosts only through the bastion (`ProxyJump`); only
 * the environment's key is offered (`IdentityFile` + `IdentitiesOnly yes`); host keys are
 * pinned in `~/.ssh/kube-platform/<env>.known_hosts` (`StrictHostKeyChecking yes`: an
 * unknown or changed key is refused). The bastion's key is filed under the alias
 * `bastion-<env>` (`HostKeyAlias`), so both of its names and any address it is reached by
 * share one pin.
 *
 * How keys get pinned (src/commands/agent-setup.ts, `--pin`): `console` reads the keys
 * cloud-init printed to each instance's serial console through the authenticated EC2 API
 * (GetConsoleOutput: no trust on first use); `keyscan` runs ssh-keyscan against the bastion
 * (trust on first use: fingerprints are printed to compare) and then, on the already
 * pinned bastion, against the private hosts. Private hosts are pinned by address
 * (`10.80.10.12` or `[10.80.10.12]:port`); a replaced node means running `--pin` again.
 *
 * Paths are absolute (not `~`): ssh expands `~` from the password database, which may
 * differ from $HOME (in tests, and with `sudo -E`).
 */

/** The variable that selects which environment `ssh bastion` means in a shell (see module doc). */
export const SSH_ENV_VAR = 'PLATFORM_SSH_ENV';

/** The pattern `~/.ssh/config` includes, exactly as written there. */
export const INCLUDE_PATTERN = '~/.ssh/kube-platform/*.config';

/** Where an environment's ssh files live. */
export interface EnvSshPaths {
  /** `~/.ssh` (0700) */
  sshDir: string;
  /** `~/.ssh/config`, the user's own file (gets the Include line) */
  userConfig: string;
  /** `~/.ssh/kube-platform` (0700) */
  dir: string;
  /** `~/.ssh/kube-platform/<env>.config` (0600) */
  config: string;
  /** `~/.ssh/kube-platform/<env>.known_hosts` (0600): the pinned host keys */
  knownHosts: string;
}

/** @param home the home directory, default `os.homedir()` (honours $HOME) */
export function envSshPaths(env: string, home: string = os.homedir()): EnvSshPaths {
  const sshDir = path.join(home, '.ssh');
  const dir = path.join(sshDir, 'kube-platform');
  return {
    sshDir,
    userConfig: path.join(sshDir, 'config'),
    dir,
    config: path.join(dir, `${env}.config`),
    knownHosts: path.join(dir, `${env}.known_hosts`),
  };
}

/** The name of an environment's bastion in the ssh config (and its host key alias). */
export function bastionAlias(env: string): string {
  return `bastion-${env}`;
}

/** What one environment's ssh config is generated from. */
export interface EnvSshConfigInput {
  /** environment name (validated: [a-z0-9-]) */
  env: string;
  /** the bastion's public address (IP or DNS name, validated) and its sshd port */
  bastion: { host: string; port: number };
  /** login user of the node image (EnvConfig.sshUser) */
  user: string;
  /** absolute path of the environment's private key (secrets/<env>/locked/ssh/<env>) */
  identityFile: string;
  /** absolute path of the environment's known_hosts file */
  knownHostsFile: string;
  /** ssh patterns of the private hosts (see patterns.ts) */
  privatePatterns: string[];
  /** sshd port of the private hosts */
  privatePort: number;
}

/** The shell test that is true in a shell whose environment is `env` (see module doc). */
export function envTest(env: string): string {
  return `/bin/sh -c 'test x\${${SSH_ENV_VAR}:-$PLATFORM_ENV} = x${env}'`;
}

/**
 * ssh reads `"`, `\` as quoting, `%` as a token (ssh_config(5) TOKENS) and `${…}` as an
 * environment variable in IdentityFile/UserKnownHostsFile; a path must carry none of them.
 * @throws UserError naming the path
 */
function checkPath(what: string, p: string): string {
  if (!path.isAbsolute(p) || /["\\%$\n\r\t]/.test(p)) {
    throw new UserError(`${what} ${JSON.stringify(p)} cannot be written into an ssh config`, {
      hint: 'use an absolute path without quotes, backslashes, % or $',
    });
  }
  return p;
}

/**
 * Generates `~/.ssh/kube-platform/<env>.config` (text, through the ssh-config package's
 * model and stringify). See the module doc for the scheme.
 *
 * @returns the file text, `\n` line ends, deterministic (same input, same bytes)
 * @throws UserError when a path cannot be expressed in ssh_config syntax
 */
export function renderEnvSshConfig(i: EnvSshConfigInput): string {
  const identityFile = checkPath('IdentityFile', i.identityFile);
  const knownHosts = checkPath('UserKnownHostsFile', i.knownHostsFile);
  const alias = bastionAlias(i.env);
  const common = {
    User: i.user,
    IdentityFile: [identityFile],
    IdentitiesOnly: 'yes',
    UserKnownHostsFile: [knownHosts],
    StrictHostKeyChecking: 'yes',
  };
  const bastion = {
    HostName: i.bastion.host,
    Port: String(i.bastion.port),
    ...common,
    ForwardAgent: 'yes',
    HostKeyAlias: alias,
  };
  const config = new SSHConfig();
  config.push(
    comment(
      `# kube-platform: ssh for environment ${i.env}, written by \`agent-setup -e ${i.env}\` (rewritten on every run).`,
    ),
    comment(
      `# \`ssh ${alias}\` always works; \`ssh bastion\` and \`ssh <private address>\` in a shell where`,
    ),
    comment(`# ${SSH_ENV_VAR} (else PLATFORM_ENV) is ${i.env}. Agent forwarding to the bastion only.`),
  );
  config.append({ Host: alias, ...bastion });
  config.append({ Match: ['originalhost', 'bastion', 'exec', envTest(i.env)], ...bastion });
  config.append({
    Match: ['originalhost', i.privatePatterns.join(','), 'exec', envTest(i.env)],
    ProxyJump: alias,
    Port: String(i.privatePort),
    ...common,
    ForwardAgent: 'no',
  });
  return SSHConfig.stringify(config);
}

function comment(content: string): Line {
  return { type: LineType.COMMENT, content, before: '', after: '\n' };
}

type LineKind = 'ours' | 'include' | 'directive' | 'blank';

/** Classifies one line of an ssh config with the ssh-config parser. */
function kindOf(line: string): LineKind {
  const d = [...SSHConfig.parse(line)].find((l): l is Directive => l.type === LineType.DIRECTIVE);
  if (!d) return 'blank';
  if (d.param.toLowerCase() !== 'include') return 'directive';
  const values = typeof d.value === 'string' ? [d.value] : d.value.map((v) => v.val);
  return values.length === 1 && values[0] === INCLUDE_PATTERN ? 'ours' : 'include';
}

/**
 * Ensures the user's `~/.ssh/config` text includes the environments' files at the top:
 * an `Include ~/.ssh/kube-platform/*.config` line before any directive other than another
 * `Include` (a top-level option such as `ForwardAgent yes` above it would otherwise win,
 * ssh_config(5): first obtained value). Present once at the top: unchanged. Missing, or
 * only further down: our line is removed from where it was and written at the top with a
 * comment. Every other line is kept byte for byte (edits are made on lines; the
 * ssh-config parser only classifies them), including CRLF line ends.
 *
 * @param text the current file ('' when it does not exist)
 * @returns the new text and whether it differs
 */
export function ensureInclude(text: string): { text: string; changed: boolean } {
  const eol = text.includes('\r\n') ? '\r\n' : '\n';
  const lines = text === '' ? [] : text.split(eol);
  const kinds = lines.map(kindOf);
  const firstOther = kinds.indexOf('directive');
  const ours = kinds.flatMap((k, i) => (k === 'ours' ? [i] : []));
  const atTop = ours.filter((i) => firstOther === -1 || i < firstOther);
  if (atTop.length === 1 && ours.length === 1) return { text, changed: false };
  const keep = atTop[0];
  const kept = lines.filter((_, i) => kinds[i] !== 'ours' || i === keep);
  if (keep !== undefined) return { text: kept.join(eol), changed: true };
  const block = new SSHConfig();
  block.push(comment('# kube-platform environments (agent-setup); keep this line above any Host or option'), {
    type: LineType.DIRECTIVE,
    param: 'Include',
    separator: ' ',
    value: INCLUDE_PATTERN,
    before: '',
    after: '\n',
  });
  const head = SSHConfig.stringify(block).split('\n').join(eol);
  const rest = kept.join(eol);
  return { text: rest.trim() === '' ? head : `${head}${eol}${rest}`, changed: true };
}
