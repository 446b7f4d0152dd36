import { chmod, lstat, mkdir, readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { AwsClients } from '../aws/clients.js';
import { type InstanceRow, listInstances } from '../aws/inventory.js';
import { type EnvConfig, loadEnvironment } from '../config/load.js';
import type { CommandContext } from '../context/command.js';
import type { EnvContext } from '../context/environment.js';
import { PlatformError, UserError } from '../errors.js';
import { exec } from '../exec/index.js';
import { atomicWrite } from '../fsutil.js';
import { log } from '../log.js';
import { displayPath, secretsDir } from '../paths.js';
import { sshPaths } from '../secrets/pki/layout.js';
import { type Agent, addKey, agentEvalLines, liveAgent, startAgent } from '../ssh/agent.js';
import {
  bastionAlias,
  type EnvSshPaths,
  ensureInclude,
  envSshPaths,
  renderEnvSshConfig,
} from '../ssh/config.js';
import { consoleHostKeys, isBastion, pickBastion, privateNodes } from '../ssh/inventory.js';
import {
  fingerprint,
  type HostKey,
  keyscan,
  knownHostsName,
  type PinResult,
  parseKeyscan,
  pinHostKeys,
  pinnedKeys,
} from '../ssh/known-hosts.js';
import { matchesSshPatterns, privateHostPatterns } from '../ssh/patterns.js';

/** Options of `agent-setup` (validated and normalised by commander: src/cli/specs/agent-setup.ts). */
export interface AgentSetupOptions {
  /** environment name */
  env: string;
  /** use the embedded local AWS for the inventory */
  local?: boolean;
  /** the bastion's address (IP or DNS name); default: the public IP of the running bastion in the inventory */
  bastion?: string;
  /** TCP port of the bastion's sshd @default 22 */
  bastionPort: number;
  /** TCP port of the private hosts' sshd @default 22 */
  port: number;
  /** how long the agent keeps the key, ssh time format (`8h`, `90m`, `1h30m`) @default '8h' */
  lifetime: string;
  /**
   * pin host keys: `console` from the instances' EC2 console output (cloud-init prints them at
   * first boot; needs the inventory), `keyscan` with ssh-keyscan (the bastion directly, private
   * hosts through the bastion: trust on first use); absent: pin nothing, use the pins there are
   */
  pin?: 'keyscan' | 'console';
  /** private hosts whose keys to pin (IPs or names) @default every running node of the inventory */
  node?: string[];
}

/** The environment's private key, checked: present, a regular file, no group/other access. */
async function checkKey(env: string): Promise<string> {
  const file = path.join(secretsDir(env), sshPaths(env).privateKey);
  const st = await stat(file).catch(() => undefined);
  if (!st?.isFile()) {
    throw new UserError(`no SSH key for environment ${env}: ${displayPath(file)} does not exist`, {
      hint: `fetch it with: fetch-secrets -e ${env} --layer locked`,
    });
  }
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0 || (mode & 0o400) === 0) {
    throw new UserError(
      `${displayPath(file)} has mode ${mode.toString(8).padStart(4, '0')}: an SSH private key must be readable by you only (0600)`,
      { hint: `chmod 600 ${file}, or fetch it again with: fetch-secrets -e ${env} --layer locked --force` },
    );
  }
  return file;
}

/**
 * Writes `file` (0600, directory 0700) when its text differs; returns whether it did. An
 * unchanged file still gets mode 0600: ssh refuses an included config that others may write.
 */
async function writeIfChanged(file: string, text: string): Promise<boolean> {
  if ((await readFile(file, 'utf8').catch(() => undefined)) === text) {
    await chmod(file, 0o600);
    return false;
  }
  await atomicWrite(file, text, 0o600, 0o700);
  return true;
}

/**
 * Adds the Include line to `~/.ssh/config` (see ensureInclude). A symlinked config (dotfile
 * managers) is edited where it points; an existing file keeps its mode; a new one is 0600
 * in a 0700 `~/.ssh`.
 */
async function ensureUserInclude(p: EnvSshPaths): Promise<void> {
  const exists = await lstat(p.userConfig).catch(() => undefined);
  const target = exists ? await realpath(p.userConfig) : p.userConfig;
  const mode = exists ? (await stat(target)).mode & 0o777 : 0o600;
  const before = exists ? await readFile(target, 'utf8') : '';
  const { text, changed } = ensureInclude(before);
  if (!changed) return;
  if (!exists) await mkdir(p.sshDir, { recursive: true, mode: 0o700 });
  await atomicWrite(target, text, mode, 0o700);
  log.info(
    `${displayPath(target)}: Include of ~/.ssh/kube-platform/*.config ${exists ? 'placed at the top' : 'created'}`,
  );
}

/** Logs what pinning did, fingerprints first, so the operator can compare them. */
function reportPins(results: PinResult[], source: string): void {
  for (const r of results) {
    for (const k of r.keys) log.info(`pinned ${r.name}: ${k.type} ${fingerprint(k)} (${source})`);
    if (r.changed) {
      log.warn(
        `${r.name}: the pinned key CHANGED (was ${r.previous.map(fingerprint).join(', ')}); fine for a replaced instance, otherwise investigate`,
      );
    }
  }
}

/** Resolves the bastion's address: the flag, or the running bastion of the inventory. */
function resolveBastion(
  o: AgentSetupOptions,
  rows: InstanceRow[] | undefined,
): { host: string; row?: InstanceRow } {
  if (o.bastion) {
    const row = rows?.find(
      (r) => isBastion(r, o.env) && (r.publicIp === o.bastion || r.privateIp === o.bastion),
    );
    return row ? { host: o.bastion, row } : { host: o.bastion };
  }
  const picked = pickBastion(rows ?? [], o.env);
  if (!picked) {
    throw new UserError(`no running bastion with a public address in environment ${o.env}`, {
      hint: `list the instances with: aws-instances -e ${o.env} (the bastion is ${o.env}-bastion), or pass --bastion HOST`,
    });
  }
  for (const other of picked.others) {
    log.warn(
      `another running bastion: ${other.name} ${other.instanceId} ${other.publicIp} (using ${picked.bastion.instanceId})`,
    );
  }
  return { host: picked.bastion.publicIp, row: picked.bastion };
}

/**
 * Pins host keys by ssh-keyscan: the bastion directly (its keys filed under its alias), then
 * the private hosts by running ssh-keyscan on the bastion, reached with the new config
 * (`ssh -F <env config>`, so the bastion's pin is already enforced for that hop).
 */
async function pinByKeyscan(
  p: EnvSshPaths,
  o: AgentSetupOptions,
  bastionHost: string,
  nodes: string[],
  agent: Agent,
): Promise<void> {
  const alias = bastionAlias(o.env);
  log.step(
    `pinning host keys with ssh-keyscan (trust on first use: compare the fingerprints with the console output)`,
  );
  reportPins(
    await pinHostKeys(p.knownHosts, new Map([[alias, await keyscan(bastionHost, o.bastionPort, p.dir)]])),
    `ssh-keyscan ${bastionHost} port ${o.bastionPort}`,
  );
  if (nodes.length === 0) return;
  const names = nodes.map((n) => knownHostsName(n, o.port));
  const r = await exec(
    'ssh',
    ['-F', p.config, '-o', 'BatchMode=yes', alias, 'ssh-keyscan', '-T', '5', '-p', String(o.port), ...nodes],
    { cwd: p.dir, env: { SSH_AUTH_SOCK: agent.sock }, reject: false, timeoutMs: 120_000 },
  );
  if (r.exitCode === 255) {
    throw new PlatformError(`cannot reach ${alias} to scan the private hosts:\n${r.stderr.trim()}`);
  }
  const found = parseKeyscan(r.stdout, names);
  for (const n of names) if (!found.has(n)) log.warn(`no host key from ${n} (through ${alias}); not pinned`);
  if (found.size > 0) reportPins(await pinHostKeys(p.knownHosts, found), `ssh-keyscan on ${alias}`);
}

/**
 * Pins host keys from the instances' EC2 console output (the keys cloud-init printed at
 * first boot, fetched through the authenticated EC2 API: no trust on first use).
 * @throws UserError when the bastion is not an instance of the inventory
 * @throws PlatformError when the bastion's console output holds no host keys (yet)
 */
async function pinByConsole(
  p: EnvSshPaths,
  o: AgentSetupOptions,
  aws: AwsClients,
  bastionRow: InstanceRow | undefined,
  nodes: (InstanceRow & { privateIp: string })[],
): Promise<void> {
  if (!bastionRow) {
    throw new UserError(`--pin console: ${o.bastion} is not the address of a bastion instance of ${o.env}`, {
      hint: `check aws-instances -e ${o.env}, or use --pin keyscan`,
    });
  }
  log.step('pinning host keys from the EC2 console output');
  const alias = bastionAlias(o.env);
  const bastionKeys = await consoleHostKeys(aws, bastionRow.instanceId);
  if (bastionKeys.length === 0) {
    throw new PlatformError(
      `the console output of ${bastionRow.instanceId} (${alias}) holds no SSH host keys`,
      {
        hint: 'EC2 publishes console output a few minutes after boot: retry, or use --pin keyscan',
      },
    );
  }
  const pins = new Map<string, HostKey[]>([[alias, bastionKeys]]);
  for (const n of nodes) {
    const keys = await consoleHostKeys(aws, n.instanceId);
    if (keys.length > 0) pins.set(knownHostsName(n.privateIp, o.port), keys);
    else log.warn(`${n.name} ${n.instanceId}: no host keys in its console output (yet); not pinned`);
  }
  reportPins(await pinHostKeys(p.knownHosts, pins), 'EC2 console output');
}

/**
 * `agent-setup -e ENV`: makes `ssh bastion` and `ssh <private ip>` work from the operator's
 * shell, with agent forwarding to the bastion only and pinned host keys (DESIGN.md §7).
 *
 * 1. checks the environment's key `secrets/<env>/locked/ssh/<env>` (present, mode 0600/0400);
 * 2. finds the bastion (`--bastion`, else the running `<env>-bastion` of the inventory);
 * 3. reuses the shell's agent when `ssh-add -l` answers (exit 0 or 1), else starts one
 *    (`ssh-agent -s`), and prints the lines for `eval "$(agent-setup -e ENV)"` on stdout
 *    (SSH_AUTH_SOCK, SSH_AGENT_PID, PLATFORM_SSH_ENV) as soon as the agent is known, so a
 *    later failure does not lose it;
 * 4. `ssh-add -t <lifetime> <key>`, then checks `ssh-add -l` lists its fingerprint;
 * 5. writes `~/.ssh/kube-platform/<env>.config` (0600, dir 0700) and the Include line at
 *    the top of `~/.ssh/config` (scheme: src/ssh/config.ts);
 * 6. with `--pin`, pins host keys into `~/.ssh/kube-platform/<env>.known_hosts`; without
 *    it, warns when the bastion has no pin yet (ssh would refuse it).
 *
 * AWS is consulted only when needed: no `--bastion`, `--pin console`, or `--pin keyscan`
 * without `--node`.
 *
 * @returns 0
 * @throws UserError (exit 2) for a missing or unprotected key, an invalid environment file,
 *   or no bastion found; ExecError/PlatformError (exit 1) when ssh tools fail
 */
export async function agentSetupCommand(o: AgentSetupOptions, context: CommandContext): Promise<number> {
  const needAws = !o.bastion || o.pin === 'console' || (o.pin === 'keyscan' && !o.node?.length);
  let ctx: EnvContext | undefined;
  try {
    let cfg: EnvConfig;
    let rows: InstanceRow[] | undefined;
    if (needAws) {
      ctx = await context.openEnvironment({ env: o.env, local: o.local });
      cfg = ctx.cfg;
      rows = await listInstances(ctx.aws, cfg.name);
    } else {
      cfg = await loadEnvironment(o.env);
    }
    const keyFile = await checkKey(cfg.name);
    const bastion = resolveBastion(o, rows);
    const patterns = privateHostPatterns(cfg);
    for (const n of o.node ?? []) {
      if (!matchesSshPatterns(n, patterns))
        log.warn(`${n} is not a private host of ${cfg.name} (${patterns.join(', ')})`);
    }
    const p = envSshPaths(cfg.name);
    const configText = renderEnvSshConfig({
      env: cfg.name,
      bastion: { host: bastion.host, port: o.bastionPort },
      user: cfg.sshUser,
      identityFile: keyFile,
      knownHostsFile: p.knownHosts,
      privatePatterns: patterns,
      privatePort: o.port,
    });

    const found = await liveAgent(process.env);
    const agent = found ?? (await startAgent());
    log.step(found ? `using the running ssh-agent at ${agent.sock}` : `started ssh-agent (pid ${agent.pid})`);
    context.stdout.write(agentEvalLines(agent, cfg.name));
    const fp = await addKey(agent, keyFile, o.lifetime);
    log.info(`key ${displayPath(keyFile)} (${fp}) in the agent for ${o.lifetime}`);

    await mkdir(p.dir, { recursive: true, mode: 0o700 });
    await chmod(p.dir, 0o700);
    const wrote = await writeIfChanged(p.config, configText);
    log.info(
      `${displayPath(p.config)} ${wrote ? 'written' : 'unchanged'} (bastion ${bastion.host} port ${o.bastionPort})`,
    );
    await ensureUserInclude(p);

    if (o.pin === 'keyscan') {
      const nodes = o.node ?? privateNodes(rows ?? [], cfg.name).map((r) => r.privateIp);
      await pinByKeyscan(p, o, bastion.host, nodes, agent);
    } else if (o.pin === 'console') {
      const all = privateNodes(rows ?? [], cfg.name);
      const nodes = o.node ? all.filter((r) => o.node!.includes(r.privateIp)) : all;
      for (const n of o.node ?? []) {
        if (!nodes.some((r) => r.privateIp === n))
          log.warn(`${n} is not the private IP of a running node; not pinned`);
      }
      await pinByConsole(p, o, ctx!.aws, bastion.row, nodes);
    } else if ((await pinnedKeys(p.knownHosts, bastionAlias(cfg.name))).length === 0) {
      log.warn(
        `no pinned host key for ${bastionAlias(cfg.name)} yet: ssh will refuse it. Pin with --pin console (from the EC2 console output) or --pin keyscan (trust on first use)`,
      );
    }
    log.step(
      `ready: ssh ${bastionAlias(cfg.name)}; in a shell with ${cfg.name}'s environment (eval the output) also ssh bastion and ssh <private ip>`,
    );
    return 0;
  } finally {
    await ctx?.close();
  }
}
