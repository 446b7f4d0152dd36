import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AwsClients } from '../aws/clients.js';
import { takeBackup } from '../backup/backup.js';
import { etcdctlSource } from '../backup/etcdctl.js';
import { endpointOf } from '../backup/node-command.js';
import { parseBackupKey } from '../backup/store.js';
import { etcdMembers } from '../config/topology.js';
import type { CommandContext } from '../context/command.js';
import { backupStore, secretStore } from '../context/environment.js';
import { UserError } from '../errors.js';
import { kubeApiFrom } from '../kube/api.js';
import { log } from '../log.js';
import { secretsDir } from '../paths.js';
import { confirmOrAbort } from '../prompt.js';
import { type Replacement, ROLL_LAYERS, type RollLayer } from '../roll/plan.js';
import { computeRollPlan, reportedLeader, runRoll } from '../roll/runner.js';
import type { RollBackups } from '../roll/snapshot.js';
import { envSshPaths } from '../ssh/config.js';
import { consoleHostKeys } from '../ssh/inventory.js';
import { fingerprint } from '../ssh/known-hosts.js';
import { repinBastion } from '../ssh/repin.js';
import {
  type BastionTunnel,
  chooseTunnelMember,
  describeRoute,
  lastLines,
  openBastionTunnel,
  type TunnelMember,
} from '../ssh/tunnel.js';
import { environmentState } from '../state/open.js';
import { assertNotDowngrade } from '../state/store.js';
import { printRows } from '../table.js';
import { attemptValidation, collectSnapshot, loadKubeconfig, validateLoop } from '../validate/run.js';
import { toolkitVersion } from '../version.js';
import { recordValidation } from './validate.js';

/**
 * After `roll bastion`: pins the replacement's host key from its EC2 console output into the
 * environment's known_hosts (src/ssh/repin.ts), waiting up to `timeoutS` for EC2 to publish it.
 * @returns false when no key appeared in time (the old pin stays: ssh refuses the new bastion)
 */
async function repinReplacedBastion(
  aws: AwsClients,
  env: string,
  instanceId: string,
  timeoutS: number,
  pollS: number,
): Promise<boolean> {
  log.step(`pinning the new bastion's host key (${instanceId}) from its EC2 console output`);
  const pinned = await repinBastion({
    env,
    instanceId,
    knownHosts: envSshPaths(env).knownHosts,
    readKeys: (id) => consoleHostKeys(aws, id),
    timeoutS,
    pollS,
  });
  if (!pinned) {
    log.warn(
      `no host keys in the console output of ${instanceId} within ${timeoutS} s: the old pin stays, so ssh refuses the new bastion until \`agent-setup -e ${env} --pin console\` pins it`,
    );
    return false;
  }
  for (const k of pinned.keys)
    log.info(`pinned ${pinned.name}: ${k.type} ${fingerprint(k)} (EC2 console output)`);
  return true;
}

/** Options of `roll`. */
export interface RollCommandOptions {
  env: string;
  local?: boolean;
  layer: string;
  /** list what would be replaced and why; change nothing */
  plan?: boolean;
  json?: boolean;
  yes?: boolean;
  /** replace every instance of the layer, up to date or not */
  force?: boolean;
  kubeconfig?: string;
  /** workers replaced at a time @default 1 */
  maxUnavailable: string | number;
  /** seconds a drain may take @default 900 (15 m) */
  drainTimeout: string | number;
  /** fail (default) or skip: leave the node cordoned, report it, go on */
  onDrainTimeout: 'fail' | 'skip';
  /** seconds to wait for each replacement @default 900 */
  replaceTimeout: string | number;
  /** seconds between the two validations after each replacement @default 10 */
  validateInterval: string | number;
  /** seconds each validation may wait @default 900 */
  validateTimeout: string | number;
  /** seconds between polls while waiting @default 5 */
  poll: string | number;
  allowDowngrade?: boolean;
  /**
   * masters: a route to one etcd member's client URL (e.g. an ssh tunnel through the bastion,
   * https://127.0.0.1:2379), through which the toolkit takes the snapshots of the roll; without
   * it a snapshot at most 60 s old must already be in the bucket
   */
  etcdEndpoint?: string;
  /**
   * masters: open that route itself, an ssh tunnel through the environment's bastion
   * (src/ssh/tunnel.ts) to one member, for the whole roll; excludes `etcdEndpoint`
   */
  etcdViaBastion?: boolean;
  /** @default secrets/<env>/secure/pki/etcd/ca.crt */
  etcdCacert?: string;
  /** @default secrets/<env>/secure/pki/apiserver-etcd-client.crt (the API server's etcd client) */
  etcdCert?: string;
  /** @default secrets/<env>/secure/pki/apiserver-etcd-client.key */
  etcdKey?: string;
}

function etcdTlsPaths(o: Pick<RollCommandOptions, 'etcdCacert' | 'etcdCert' | 'etcdKey'>, env: string) {
  const pki = path.join(secretsDir(env), 'secure', 'pki');
  return {
    cacert: o.etcdCacert ?? path.join(pki, 'etcd', 'ca.crt'),
    cert: o.etcdCert ?? path.join(pki, 'apiserver-etcd-client.crt'),
    key: o.etcdKey ?? path.join(pki, 'apiserver-etcd-client.key'),
  };
}

/**
 * The etcd CA, client certificate and key of the roll's snapshots: the flags, else the
 * working copy's etcd CA and the API server's etcd client pair.
 * @throws UserError naming the flag of a file that does not exist
 */
export function etcdTlsFiles(
  o: Pick<RollCommandOptions, 'etcdCacert' | 'etcdCert' | 'etcdKey'>,
  env: string,
): { cacert: string; cert: string; key: string } {
  const files = etcdTlsPaths(o, env);
  for (const [flag, file] of Object.entries(files)) {
    if (!existsSync(file)) {
      throw new UserError(`--etcd-${flag} ${file}: no such file`, {
        hint: `fetch-secrets -e ${env} brings the working copy's PKI; or give --etcd-${flag}`,
      });
    }
  }
  return files;
}

/**
 * The snapshot side of `roll secure`: the bucket's listing, and — with `--etcd-endpoint` —
 * `etcdctl snapshot save` through it, sealed, uploaded and verified as `etcd-backup now` does
 * (src/backup/backup.ts). TLS files default to the working copy's etcd CA and the API
 * server's etcd client certificate; plain http endpoints take none.
 * @throws UserError for a malformed endpoint or a TLS file that does not exist
 */
export async function rollBackups(
  o: Pick<RollCommandOptions, 'etcdEndpoint' | 'etcdCacert' | 'etcdCert' | 'etcdKey'>,
  env: string,
  store: import('../backup/store.js').BackupStore,
): Promise<RollBackups> {
  const list = () => store.list();
  if (!o.etcdEndpoint) return { list };
  const https = o.etcdEndpoint.startsWith('https://');
  const files = https ? etcdTlsFiles(o, env) : etcdTlsPaths(o, env);
  const endpoint = endpointOf({
    endpoint: o.etcdEndpoint,
    ...(https ? { cacert: files.cacert, cert: files.cert, key: files.key } : {}),
  });
  return {
    list,
    route: `--etcd-endpoint ${o.etcdEndpoint}`,
    take: async () => {
      const r = await takeBackup(store, etcdctlSource(endpoint), { member: 'pre-roll' });
      const parsed = parseBackupKey(r.key);
      return { key: r.key, takenAtMs: parsed?.takenAtMs ?? Date.now() };
    },
  };
}

/**
 * `rollBackups` through an open bastion tunnel: messages name the tunnel, each snapshot first
 * reopens it when ssh has exited (a replaced bastion, a dropped connection), and a failed
 * snapshot carries ssh's diagnostics (e.g. "open failed: connect failed") beside etcdctl's.
 */
export function throughTunnel(b: RollBackups, tunnel: BastionTunnel): RollBackups {
  const take = b.take;
  if (!take) return b;
  return {
    list: b.list,
    route: tunnel.route,
    take: async () => {
      await tunnel.ensure();
      await tunnel.check(); // fails fast when the member does not answer (etcdctl would retry for 300 s)
      try {
        return await take();
      } catch (e) {
        const said = lastLines(tunnel.stderr(), 3);
        throw new Error(`${(e as Error).message}${said ? ` (ssh: ${said})` : ''}`, { cause: e });
      }
    },
  };
}

/** The member `--etcd-via-bastion` forwards to: one the roll does not replace, if any (src/ssh/tunnel.ts). */
function tunnelMemberFor(cfg: Parameters<typeof etcdMembers>[0], plan: Replacement[]): TunnelMember {
  return chooseTunnelMember(
    etcdMembers(cfg),
    plan.flatMap((r) => (r.etcdMember ? [r.etcdMember] : [])),
  );
}

function seconds(flag: string, v: string | number, min: number, max: number): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UserError(`--${flag} ${v}: must be a number of seconds from ${min} to ${max}`);
  }
  return n;
}

/**
 * `roll LAYER`: rolling replacement of the instances of a layer (compute, secure, bastion)
 * that run an outdated launch template or AMI (or all with --force). `--plan` lists them
 * with the reason and changes nothing. Otherwise asks (or --yes), then replaces them as
 * src/roll/runner.ts describes, holding the operation in the cluster state's journal.
 * @returns 0 when every target was replaced (or nothing needed it)
 * Masters: with `--etcd-endpoint` (or `--etcd-via-bastion`: an ssh tunnel the command opens
 * through the bastion and closes when it ends, src/ssh/tunnel.ts) a snapshot is taken before
 * the roll starts and whenever the newest is over 60 s old when a master is about to go
 * (src/roll/snapshot.ts).
 * @throws UserError (2) for a bad layer or flag; ConflictError (3) when another operation
 *   holds the cluster state, the quorum gate refuses, or no snapshot at most 60 s old is
 *   there and none can be taken, or the tunnel through the bastion cannot be opened (nothing
 *   terminated); TimeoutError (5) when a drain,
 *   replacement or validation ran out of time; AbortError (130) when declined or interrupted
 */
export async function rollCommand(o: RollCommandOptions, context: CommandContext): Promise<number> {
  if (!(ROLL_LAYERS as readonly string[]).includes(o.layer)) {
    throw new UserError(`roll ${o.layer}: the layer must be compute, secure or bastion`);
  }
  const layer = o.layer as RollLayer;
  const maxUnavailable = Number(o.maxUnavailable);
  if (!Number.isInteger(maxUnavailable) || maxUnavailable < 1 || maxUnavailable > 100) {
    throw new UserError(`--max-unavailable ${o.maxUnavailable}: must be a whole number from 1 to 100`);
  }
  if (layer === 'secure' && maxUnavailable !== 1) {
    throw new UserError('--max-unavailable: masters are replaced strictly one at a time');
  }
  const drainTimeoutS = seconds('drain-timeout', o.drainTimeout, 1, 86_400);
  const replaceTimeoutS = seconds('replace-timeout', o.replaceTimeout, 1, 86_400);
  const validateIntervalS = seconds('validate-interval', o.validateInterval, 0.05, 3600);
  const validateTimeoutS = seconds('validate-timeout', o.validateTimeout, 1, 86_400);
  const pollS = seconds('poll', o.poll, 0.05, 600);
  if (o.etcdViaBastion && o.etcdEndpoint) {
    throw new UserError('--etcd-via-bastion and --etcd-endpoint: give one route to etcd, not both');
  }
  if (o.etcdViaBastion && layer !== 'secure') {
    throw new UserError(`--etcd-via-bastion: only roll secure takes etcd snapshots, not roll ${layer}`);
  }

  const ctx = await context.openEnvironment({ env: o.env, local: o.local, quiet: Boolean(o.json) });
  let tunnel: BastionTunnel | undefined;
  try {
    const env = ctx.cfg.name;
    const { store } = await secretStore(ctx);
    const stateStore = await environmentState(ctx.aws, env, ctx.names);
    const snap = await stateStore.read();
    const leader = layer === 'secure' ? await reportedLeader(store) : null;
    const { plan } = await computeRollPlan(ctx.aws, env, layer, { force: Boolean(o.force), leader });
    const pending = snap.state.operation;

    if (o.plan) {
      await printRows<Replacement>(
        plan,
        [
          { title: 'Instance', cell: (r) => r.instanceId },
          { title: 'Name', cell: (r) => r.name },
          { title: 'ASG', cell: (r) => r.asg },
          { title: 'AZ', cell: (r) => r.availabilityZone },
          ...(layer === 'secure' ? [{ title: 'etcd member', cell: (r: Replacement) => r.etcdMember }] : []),
          { title: 'Reason', cell: (r) => r.reasons.join(', ') },
        ],
        o.json,
        context.stdout,
      );
      if (layer === 'secure') {
        if (o.etcdViaBastion) {
          const route = describeRoute(env, tunnelMemberFor(ctx.cfg, plan));
          log.info(`etcd snapshots would be taken through ${route}`);
          if (!existsSync(envSshPaths(env).config))
            log.warn(
              `${envSshPaths(env).config} does not exist: the roll would refuse; eval "$(agent-setup -e ${env})" writes it`,
            );
        } else if (o.etcdEndpoint)
          log.info(`etcd snapshots would be taken through --etcd-endpoint ${o.etcdEndpoint}`);
        else
          log.info(
            'no route to an etcd member (--etcd-via-bastion or --etcd-endpoint): each master would need a snapshot at most 60 s old in the bucket',
          );
      }
      log.info(
        `${plan.length} ${layer} instance${plan.length === 1 ? '' : 's'} to replace; nothing was changed`,
      );
      if (pending) {
        log.info(
          `an operation is in the journal: ${pending.kind} ${pending.layer} (${pending.id}); roll ${pending.layer} resumes it`,
        );
      }
      return 0;
    }

    assertNotDowngrade(snap.state, toolkitVersion(), Boolean(o.allowDowngrade), stateStore.where);
    const resuming = pending && pending.kind === 'roll' && pending.layer === layer;
    if (!plan.length && !resuming) {
      log.info(`every ${layer} instance of ${env} is up to date; nothing to replace`);
      return 0;
    }
    for (const r of plan) log.info(`${r.instanceId} ${r.name}: ${r.reasons.join(', ')}`);
    if (!o.yes) {
      await confirmOrAbort(
        `replace ${plan.length} ${layer} instance${plan.length === 1 ? '' : 's'} of ${env}, ${layer === 'secure' ? 'one at a time' : `${maxUnavailable} at a time`}${resuming ? ' (resuming the interrupted roll)' : ''}?`,
        `non-interactively: roll -e ${env} ${layer} --yes`,
      );
    }

    const kube =
      layer === 'bastion'
        ? undefined
        : await kubeApiFrom((await loadKubeconfig(o.kubeconfig, secretsDir(env), store)).text);
    if (kube) await kube.readyz();
    let backups: RollBackups | undefined;
    if (layer === 'secure' && o.etcdViaBastion) {
      const f = etcdTlsFiles(o, env);
      tunnel = await openBastionTunnel({
        env,
        member: tunnelMemberFor(ctx.cfg, plan),
        consequence: 'nothing was terminated',
        tls: { caFile: f.cacert, certFile: f.cert, keyFile: f.key },
      });
      backups = throughTunnel(
        await rollBackups({ ...o, etcdEndpoint: tunnel.url }, env, await backupStore(ctx)),
        tunnel,
      );
    } else if (layer === 'secure') backups = await rollBackups(o, env, await backupStore(ctx));
    const controller = new AbortController();
    const onSigint = () => {
      log.warn('interrupted: recording it in the journal (run roll again to resume)');
      controller.abort(new Error('interrupted'));
    };
    process.once('SIGINT', onSigint);
    process.once('SIGTERM', onSigint);
    try {
      const report = await runRoll(
        {
          aws: ctx.aws,
          environment: env,
          store,
          state: stateStore,
          ...(kube ? { kube } : {}),
          ...(backups ? { backups } : {}),
          owner: { arn: ctx.identity.arn, host: os.hostname(), pid: process.pid },
          validate: async () => {
            const r = await validateLoop({
              wait: true,
              count: 2,
              intervalS: validateIntervalS,
              timeoutS: validateTimeoutS,
              attempt: () =>
                kube
                  ? attemptValidation(() =>
                      collectSnapshot({ aws: ctx.aws, environment: env, store, kube, state: snap.state }),
                    )
                  : Promise.resolve([]),
              onAttempt: ({ failures }) => {
                if (failures.length)
                  log.info(
                    `  not yet: ${failures[0]!.message}${failures.length > 1 ? ` (+${failures.length - 1})` : ''}`,
                  );
              },
            });
            await recordValidation(stateStore, r);
            return r;
          },
        },
        {
          layer,
          force: Boolean(o.force),
          maxUnavailable,
          drainTimeoutS,
          onDrainTimeout: o.onDrainTimeout,
          replaceTimeoutS,
          pollS,
          evictRetryS: 5,
          allowDowngrade: Boolean(o.allowDowngrade),
          signal: controller.signal,
        },
        plan,
      );
      if (o.json) context.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      log.info(
        `roll ${layer}: ${report.replaced.length} replaced${report.skipped.length ? `, ${report.skipped.length} left cordoned: ${report.skipped.map((s) => s.instanceId).join(', ')}` : ''}`,
      );
      if (layer === 'bastion' && report.replaced.length) {
        return (await repinReplacedBastion(ctx.aws, env, report.replaced.at(-1)!.new, replaceTimeoutS, pollS))
          ? 0
          : 5;
      }
      return 0;
    } finally {
      process.removeListener('SIGINT', onSigint);
      process.removeListener('SIGTERM', onSigint);
    }
  } finally {
    await tunnel?.close();
    await ctx.close();
  }
}
