import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import tls from 'node:tls';
import { ConflictError } from '../errors.js';
import { exec, spawnWatched, type WatchedProcess } from '../exec/index.js';
import { log } from '../log.js';
import { bastionAlias, envSshPaths } from './config.js';

/**
 * A route from the operator's container to one etcd member's client port: an `ssh -N -L`
 * local forward through the environment's bastion, for the snapshots of `roll secure` and
 * `upgrade` (`--etcd-via-bastion`, issue 14 item 3).
 *
 * What it relies on, all written by `agent-setup -e ENV` (src/commands/agent-setup.ts,
 * src/ssh/config.ts): `~/.ssh/kube-platform/<env>.config` with `Host bastion-<env>`
 * (HostName, Port, User, IdentityFile + IdentitiesOnly, StrictHostKeyChecking yes against
 * the pinned `<env>.known_hosts`), and the environment key in an ssh-agent or its file. ssh
 * reads only that file (`-F`: neither ~/.ssh/config nor /etc/ssh/ssh_config, ssh(1)), runs
 * no remote command (`-N`), never prompts (`BatchMode=yes`: a missing key or an unpinned
 * host key fails instead of asking), exits when the forward cannot be set up
 * (`ExitOnForwardFailure=yes`), forwards no agent on this connection (`ForwardAgent=no`
 * overrides the bastion block's `yes`: ssh_config(5), the first value obtained wins and
 * command-line options come first) and gives up on a dead bastion (`ConnectTimeout`,
 * `ServerAliveInterval`/`CountMax`). No secret is on the command line: the key stays in the
 * agent or the IdentityFile named in the config.
 *
 * The local end listens on 127.0.0.1 only, on a free port. ssh binds a local forward only
 * after the session is authenticated (OpenSSH ssh.c: ssh_init_forwarding runs after the
 * login), so "the port accepts" means "the bastion let us in". Each connection to the port
 * opens its own `direct-tcpip` channel (RFC 4254 §7.2) from the bastion to
 * `<member ENI ip>:2379`, so the tunnel outlives a member's restart: a replaced master
 * claims the same ENI address (DESIGN.md §6) and new connections reach it again. TLS is
 * end to end between etcdctl and the member: every member's server certificate carries
 * 127.0.0.1 in its SANs (src/secrets/pki/layout.ts), so `https://127.0.0.1:<port>`
 * verifies against the etcd CA as on a master; with `tls` the tunnel checks exactly that
 * (a verified handshake with the client certificate) when it opens and before each snapshot
 * ({@link BastionTunnel.check}), so a member the bastion cannot reach is refused in well
 * under a second instead of etcdctl retrying for minutes. That is also why a port taken by another
 * program between the free-port probe and ssh's bind is harmless beyond a failed snapshot:
 * ssh exits (ExitOnForwardFailure) and the stranger cannot present a member's certificate.
 */

/** etcd's client port (etcd.io "Configuration flags": --listen-client-urls default :2379). */
export const ETCD_CLIENT_PORT = 2379;

/** Seconds to wait for the tunnel to accept connections @default 15 */
export const TUNNEL_OPEN_TIMEOUT_S = 15;

/** The member a tunnel leads to. */
export interface TunnelMember {
  /** member name, e.g. `etcd-0` (src/config/topology.ts) */
  name: string;
  /** its fixed ENI address */
  ip: string;
}

/** What the ssh command line is built from (pure input of {@link tunnelArgs}). */
export interface TunnelArgsInput {
  /** `~/.ssh/kube-platform/<env>.config` (absolute) */
  configFile: string;
  /** `bastion-<env>` */
  alias: string;
  /** the local port on 127.0.0.1 */
  localPort: number;
  /** the member's address and client port as the bastion reaches them */
  remoteHost: string;
  remotePort: number;
  /** seconds ssh may take to connect to the bastion @default 10 */
  connectTimeoutS?: number;
}

/**
 * The arguments of `ssh` for the tunnel (see the module doc for each option). Pure.
 * @returns an argument array: no shell, no secret (a key, a passphrase) in it
 */
export function tunnelArgs(i: TunnelArgsInput): string[] {
  return [
    '-F',
    i.configFile,
    '-N',
    '-o',
    'BatchMode=yes',
    '-o',
    'ExitOnForwardFailure=yes',
    '-o',
    'ForwardAgent=no',
    '-o',
    'ControlMaster=no',
    '-o',
    'ControlPath=none',
    '-o',
    `ConnectTimeout=${i.connectTimeoutS ?? 10}`,
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=3',
    '-L',
    `127.0.0.1:${i.localPort}:${i.remoteHost}:${i.remotePort}`,
    i.alias,
  ];
}

/**
 * The member to forward to: the first of `members` that is not in `avoid` (e.g. the masters
 * a roll is about to replace), else the one of `avoid` listed last (the master that goes
 * down last: its snapshot gate runs while it is still up). Pure.
 * @throws Error for an empty member list (a validated environment has at least one master)
 */
export function chooseTunnelMember<M extends TunnelMember>(members: M[], avoid: readonly string[] = []): M {
  if (!members.length) throw new Error('no etcd members');
  const free = members.find((m) => !avoid.includes(m.name));
  if (free) return free;
  for (let i = avoid.length - 1; i >= 0; i--) {
    const m = members.find((x) => x.name === avoid[i]);
    if (m) return m;
  }
  return members[0]!;
}

/** How `--plan` and messages describe the route. */
export function describeRoute(
  env: string,
  member: TunnelMember,
  remotePort = ETCD_CLIENT_PORT,
  home?: string,
): string {
  return `an ssh tunnel through ${bastionAlias(env)} (${envSshPaths(env, home).config}) to ${member.name} ${member.ip}:${remotePort}`;
}

/** An open tunnel. */
export interface BastionTunnel {
  /** `https://127.0.0.1:<local port>`: the member's client URL through the tunnel */
  url: string;
  localPort: number;
  member: TunnelMember;
  /** how messages name it, see {@link describeRoute} */
  route: string;
  /** milliseconds from spawning ssh to the port accepting (the last opening's) */
  openedMs: number;
  /** the ssh process id (tests check it is gone after close) */
  pid(): number;
  /** whether ssh still runs */
  alive(): boolean;
  /** ssh's stderr so far (its diagnostics; no secret is ever in it) */
  stderr(): string;
  /**
   * Checks that the member answers through the tunnel: with `tls`, a TLS handshake verified
   * against the etcd CA with the client certificate (the member's certificate carries
   * 127.0.0.1); without, that the port accepts. Bounded by {@link PROBE_TIMEOUT_S}.
   * etcdctl 3.4's `snapshot save` retries an endpoint that accepts and drops connections
   * until its own deadline (300 s here), so this is what makes a dead member fail fast.
   * @throws ConflictError naming the member and ssh's diagnostics (e.g. "open failed:
   *   connect failed: Connection refused" from the bastion)
   */
  check(): Promise<void>;
  /**
   * Opens the tunnel again on the same local port when ssh has exited (e.g. the bastion was
   * replaced or the connection dropped); does nothing while it runs.
   * @throws ConflictError as {@link openBastionTunnel}
   */
  ensure(): Promise<void>;
  /** stops ssh (SIGTERM, SIGKILL after 5 s) and waits for it; idempotent */
  close(): Promise<void>;
}

/** Options of {@link openBastionTunnel}. */
export interface OpenTunnelOptions {
  env: string;
  member: TunnelMember;
  /** the member's client port @default 2379 */
  remotePort?: number;
  /** home directory whose ~/.ssh/kube-platform is used @default os.homedir() */
  home?: string;
  /** seconds to wait for the port to accept @default 15 */
  timeoutS?: number;
  /** the ssh program @default ssh */
  ssh?: string;
  /** extra environment of ssh (e.g. SSH_AUTH_SOCK); process.env is inherited */
  sshEnv?: Record<string, string | undefined>;
  /** what the caller's refusal means, appended to the first opening's error (e.g. `nothing was terminated`) */
  consequence?: string;
  /** the etcd CA and a client certificate and key: {@link BastionTunnel.check} then completes a verified TLS handshake */
  tls?: { caFile: string; certFile: string; keyFile: string };
}

/** Seconds the member may take to complete the TLS handshake through the tunnel. */
export const PROBE_TIMEOUT_S = 10;

const LOCAL = '127.0.0.1';
const FIX = (env: string) => `eval "$(agent-setup -e ${env})"`;

/** A port the OS reports free on 127.0.0.1 (bind to 0, read it back, release it). */
function freeLocalPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, LOCAL, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

/** Resolves true when something accepts a TCP connection on 127.0.0.1:port within 500 ms. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: LOCAL, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(500, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/**
 * A TLS handshake with the member through the tunnel, verified (CA, the certificate's
 * 127.0.0.1 SAN) and with the client certificate; nothing is sent after it.
 * @returns undefined on success, else why it failed
 */
function handshake(
  port: number,
  files: { caFile: string; certFile: string; keyFile: string },
  timeoutS: number,
): Promise<string | undefined> {
  let ca: Buffer;
  let cert: Buffer;
  let key: Buffer;
  try {
    ca = readFileSync(files.caFile);
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
  } catch (e) {
    return Promise.resolve(`cannot read the etcd TLS files: ${(e as Error).message}`);
  }
  return new Promise((resolve) => {
    const s = tls.connect({ host: LOCAL, port, ca, cert, key });
    const done = (why: string | undefined) => {
      s.destroy();
      resolve(why);
    };
    s.setTimeout(timeoutS * 1000, () => done(`no TLS handshake within ${timeoutS} s`));
    s.once('secureConnect', () => done(s.authorized ? undefined : String(s.authorizationError)));
    s.once('error', (e) => done((e as NodeJS.ErrnoException).code ?? e.message));
    s.once('close', () => done('the connection was closed before the TLS handshake'));
  });
}

/** `HostName:Port` of the bastion as ssh resolves it from the config (`ssh -G`), for messages. */
async function bastionAddress(ssh: string, configFile: string, alias: string): Promise<string> {
  const r = await exec(ssh, ['-F', configFile, '-G', alias], { cwd: os.tmpdir(), reject: false }).catch(
    () => undefined,
  );
  if (r?.exitCode !== 0) return alias;
  const get = (k: string) =>
    r.stdout
      .split('\n')
      .find((l) => l.startsWith(`${k} `))
      ?.slice(k.length + 1)
      .trim();
  const host = get('hostname');
  return host ? `${host}:${get('port') ?? '22'}` : alias;
}

/** The last `lines` non-empty lines of ssh's stderr, joined with '; ' (CR/LF line ends), for messages. */
export function lastLines(text: string, lines = 5): string {
  return text
    .split(/\r?\n|\r/)
    .map((l) => l.trim())
    .filter(Boolean)
    .slice(-lines)
    .join('; ');
}

/**
 * Opens `ssh -F ~/.ssh/kube-platform/<env>.config -N -L 127.0.0.1:<free port>:<member ip>:2379
 * bastion-<env>` (see the module doc), waits, at most `timeoutS`, until the local port
 * accepts connections, then runs {@link BastionTunnel.check} once. The caller closes it (`close()`) on success, error and interruption;
 * ssh is also killed when this process exits (src/exec spawnWatched).
 *
 * @returns the open tunnel, its URL and the time it took to open
 * @throws ConflictError (exit 3, as a failed snapshot gate) naming the config file when
 *   `agent-setup` has not written it, or naming the bastion (alias and address) with ssh's
 *   own diagnostics when ssh exits or the port does not accept within `timeoutS`, or naming
 *   the member when it does not answer through the tunnel (see check) — in every
 *   case ssh is stopped before the error is thrown; PlatformError when ssh is not installed
 */
export async function openBastionTunnel(o: OpenTunnelOptions): Promise<BastionTunnel> {
  const { config: configFile } = envSshPaths(o.env, o.home);
  const alias = bastionAlias(o.env);
  const ssh = o.ssh ?? 'ssh';
  const remotePort = o.remotePort ?? ETCD_CLIENT_PORT;
  const timeoutS = o.timeoutS ?? TUNNEL_OPEN_TIMEOUT_S;
  const route = describeRoute(o.env, o.member, remotePort, o.home);
  if (!existsSync(configFile)) {
    throw new ConflictError(
      `cannot open ${route}: ${configFile} does not exist (agent-setup has not been run for ${o.env} in this container)${o.consequence ? `; ${o.consequence}` : ''}`,
      { hint: `${FIX(o.env)} writes it, pins the bastion's host key and loads the key into an ssh-agent` },
    );
  }

  const open = async (
    port: number,
    consequence?: string,
  ): Promise<{ proc: WatchedProcess; ms: number; port: number }> => {
    const started = Date.now();
    const proc = await spawnWatched(
      ssh,
      tunnelArgs({
        configFile,
        alias,
        localPort: port,
        remoteHost: o.member.ip,
        remotePort,
        connectTimeoutS: Math.max(1, Math.min(10, Math.floor(timeoutS))),
      }),
      { cwd: os.tmpdir(), ...(o.sshEnv ? { env: o.sshEnv } : {}) },
    );
    const deadline = started + timeoutS * 1000;
    for (;;) {
      if (!proc.running()) break;
      if (await accepts(port)) {
        // the listener may be another program's that took the port first; ssh exits then
        // (ExitOnForwardFailure): it must still run once the port answered
        if (proc.running()) return { proc, ms: Date.now() - started, port };
        break;
      }
      if (Date.now() > deadline) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const running = proc.running();
    await proc.stop();
    const exitCode = await proc.exited;
    const where = await bastionAddress(ssh, configFile, alias);
    const said = lastLines(proc.stderr());
    const why = running
      ? `the local port did not accept connections within ${timeoutS} s`
      : `ssh exited${exitCode === null ? ' on a signal' : ` with code ${exitCode}`}`;
    throw new ConflictError(
      `cannot open ${route}: bastion ${alias} (${where}): ${why}${said ? `: ${said}` : ''}${consequence ? `; ${consequence}` : ''}`,
      {
        hint: `check the bastion is up and reachable (ssh -F ${configFile} ${alias} true); after a new bastion or key, ${FIX(o.env)} pins and loads them again`,
      },
    );
  };

  let opened: { proc: WatchedProcess; ms: number; port: number };
  try {
    opened = await open(await freeLocalPort(), o.consequence);
  } catch (e) {
    // another program may have taken the free port between freeLocalPort() and ssh's bind: once more
    if (!/local forwarding|bind|Address already in use/i.test((e as Error).message)) throw e;
    opened = await open(await freeLocalPort(), o.consequence);
  }
  let proc = opened.proc;
  const localPort = opened.port;
  const check = async (consequence?: string) => {
    const why = o.tls
      ? await handshake(localPort, o.tls, PROBE_TIMEOUT_S)
      : (await accepts(localPort))
        ? undefined
        : 'the local port does not accept connections';
    if (!why) return;
    // ssh logs the bastion's refusal of the channel a moment after it closes our socket
    await new Promise((r) => setTimeout(r, 100));
    const said = lastLines(proc.stderr(), 3);
    throw new ConflictError(
      `the bastion ${alias} does not reach ${o.member.name} ${o.member.ip}:${remotePort} through the tunnel: ${why}${said ? ` (ssh: ${said})` : ''}${consequence ? `; ${consequence}` : ''}`,
      {
        hint: `is ${o.member.name} up (validate -e ${o.env}), and does the masters' security group admit ${remotePort} from the bastion's?`,
      },
    );
  };
  try {
    await check(o.consequence);
  } catch (e) {
    await proc.stop();
    throw e;
  }
  const tunnel: BastionTunnel = {
    url: `https://${LOCAL}:${localPort}`,
    localPort,
    member: o.member,
    route,
    openedMs: opened.ms,
    pid: () => proc.pid,
    alive: () => proc.running(),
    stderr: () => proc.stderr(),
    check: () => check(),
    async ensure() {
      if (proc.running()) return;
      log.info(
        `the ssh tunnel to ${o.member.name} has closed (${lastLines(proc.stderr(), 2) || 'no message'}): opening it again`,
      );
      const again = await open(localPort);
      proc = again.proc;
      tunnel.openedMs = again.ms;
    },
    async close() {
      await proc.stop();
    },
  };
  log.info(
    `etcd ${o.member.name} reachable at ${tunnel.url} through ${alias} (tunnel open in ${opened.ms} ms)`,
  );
  return tunnel;
}
