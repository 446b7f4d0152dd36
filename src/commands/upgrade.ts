import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { CommandContext } from '../context/command.js';
import { backupStore, type EnvContext, secretStore } from '../context/environment.js';
import { ConflictError, PlatformError, UserError } from '../errors.js';
import { exec } from '../exec/index.js';
import { type KubeApi, kubeApiFrom } from '../kube/api.js';
import { log } from '../log.js';
import { displayPath, manifestsTemplateDir, secretsDir } from '../paths.js';
import { confirmOrAbort, typeBackOrAbort } from '../prompt.js';
import { sha256 } from '../secrets/envelope.js';
import type { IndexSnapshot, SecretStore } from '../secrets/store.js';
import type { UpgradeRecord } from '../state/schema.js';
import type { ClusterStateStore } from '../state/store.js';
import { renderTable } from '../table.js';
import {
  heldByOther,
  PHASES,
  type Phase,
  PreflightError,
  remainingPhases,
  runUpgrade,
  type UpgradeDeps,
  type UpgradeJournal,
  type UpgradeOwner,
} from '../upgrade/phases.js';
import { type Finding, preflight, type UpgradeTarget } from '../upgrade/skew.js';
import {
  type ComponentVersions,
  PHASE_FILES,
  setEnvKeys,
  stagedValues,
  versionsAfter,
} from '../upgrade/stage.js';
import { kubectlVersionFrom, versionsFrom } from '../upgrade/versions.js';
import type { ValidateResult } from '../validate/run.js';
import { loadKubeconfig } from '../validate/run.js';

/** The snapshot's member when neither --etcd-endpoint nor --etcd-via-bastion is given (on a master). */
const DEFAULT_ETCD_ENDPOINT = 'https://127.0.0.1:2379';

/** How `--plan` names the `--etcd-via-bastion` route (src/ssh/tunnel.ts); opens nothing. */
async function bastionRoute(ctx: EnvContext): Promise<string> {
  const { chooseTunnelMember, describeRoute } = await import('../ssh/tunnel.js');
  const { etcdMembers } = await import('../config/topology.js');
  return describeRoute(ctx.cfg.name, chooseTunnelMember(etcdMembers(ctx.cfg)));
}

/** Options of `upgrade` (README "### upgrade"). */
export interface UpgradeOptions {
  env: string;
  local?: boolean;
  /** the target Kubernetes release, vX.Y.Z */
  to: string;
  /** the target etcd release @default the environment's ETCD_VERSION */
  etcd?: string;
  /** kubeconfig file @default secrets/<env>/locked/admin.conf, else the bucket's */
  kubeconfig?: string;
  /** show the preflight and the phases, change nothing */
  plan?: boolean;
  json?: boolean;
  /** run without asking (outside play-* also needs `confirm`) */
  yes?: boolean;
  /** the environment name typed back, for scripts (with --yes) */
  confirm?: string;
  /** workers phase: do not apply Terraform (the launch templates already install the target kubelet) */
  skipTerraform?: boolean;
  /** the etcd member the snapshot is taken from @default https://127.0.0.1:2379 */
  etcdEndpoint?: string;
  /**
   * take the snapshot through an ssh tunnel the command opens through the environment's
   * bastion to one member (src/ssh/tunnel.ts), closed once the snapshot is verified;
   * excludes `etcdEndpoint`
   */
  etcdViaBastion?: boolean;
  /** CA, client certificate and key for it @default the working copy's etcd CA and apiserver-etcd-client pair */
  etcdCacert?: string;
  etcdCert?: string;
  etcdKey?: string;
  /** seconds each master may take to report healthy on a new generation @default 300 */
  rolloutTimeout?: string | number;
  /** seconds each validation may wait for two consecutive passes @default 900 */
  validateTimeout?: string | number;
  /** seconds between those passes @default 10 */
  validateInterval?: string | number;
  /** workers: seconds to wait for each replacement @default 900 */
  replaceTimeout?: string | number;
  /** workers: seconds a drain may take @default 900 */
  drainTimeout?: string | number;
  /** seconds between polls while waiting @default 5 */
  poll?: string | number;
  allowDowngrade?: boolean;
}

/**
 * The skew findings for upgrading the cluster behind `kube` to `target`: versions from the
 * nodes and the control-plane static pods, kubectl's from `kubectlJson`. Pure but for the API reads.
 */
export async function clusterPreflight(
  kube: KubeApi,
  target: UpgradeTarget,
  kubectlJson?: string,
): Promise<Finding[]> {
  const [nodes, pods] = await Promise.all([kube.listNodes(), kube.listPods()]);
  return preflight(
    versionsFrom(nodes, pods, kubectlJson ? kubectlVersionFrom(kubectlJson) : undefined),
    target,
  );
}

/** Whether process `pid` runs on this host (signal 0; EPERM: it runs as someone else). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function seconds(
  flag: string,
  v: string | number | undefined,
  dflt: number,
  min: number,
  max: number,
): number {
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < min || n > max) {
    throw new UserError(`--${flag} ${v}: must be a number of seconds from ${min} to ${max}`);
  }
  return n;
}

const CHANGING = ['etcd', 'apiservers', 'controllers'] as const;
type ChangingPhase = (typeof CHANGING)[number];
const isChanging = (p: Phase | null): p is ChangingPhase => (CHANGING as readonly string[]).includes(p ?? '');

/** The last control-plane phase done (the rendered manifests' current stage), or null. */
function lastChangingDone(done: Phase[]): Phase | null {
  return [...done].reverse().find((p) => isChanging(p) || p === 'workers') ?? null;
}

/** One rendered secure file whose content a phase changes. */
interface FileChange {
  path: string;
  /** `image` lines before → after, for the plan */
  from: string;
  to: string;
}

/**
 * Renders the secure layer with the component versions of `versions` (src/upgrade/stage.ts),
 * with the Kubernetes CA of the working copy (the metrics-server APIService's caBundle).
 * @returns layer-relative path → content
 * @throws UserError when the working copy has no secure/pki/ca.crt (fetch-secrets first)
 */
async function renderSecure(ctx: EnvContext, versions: ComponentVersions): Promise<Map<string, string>> {
  const { manifestValues, renderTree } = await import('../manifests/index.js');
  const { CAS } = await import('../secrets/pki/index.js');
  const caFile = path.join(secretsDir(ctx.cfg.name), ...CAS.kubernetes.cert.split('/'));
  const kubernetesCaPem = await readFile(caFile, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`${displayPath(caFile)}: ${e.code === 'ENOENT' ? 'missing' : e.message}`, {
      hint: `fetch-secrets -e ${ctx.cfg.name} first`,
    });
  });
  const files = await renderTree(
    manifestsTemplateDir(),
    stagedValues(manifestValues(ctx.cfg, { kubernetesCaPem }), versions),
  );
  return new Map(
    files.filter((f) => f.path.startsWith('secure/')).map((f) => [f.path.slice('secure/'.length), f.content]),
  );
}

const imageOf = (text: string | undefined) =>
  (text ?? '').match(/^\s*image:\s*"?([^"\s]+)"?\s*$/m)?.[1] ?? '(none)';

/**
 * What publishing `phase` changes over `base` (the render of the stage before it). Pure.
 * @throws PlatformError when a file outside the phase's own would change (a bug of the staging)
 */
function phaseChanges(
  phase: ChangingPhase,
  before: Map<string, string>,
  after: Map<string, string>,
): FileChange[] {
  const out: FileChange[] = [];
  for (const [p, text] of after) {
    if (before.get(p) === text) continue;
    if (!PHASE_FILES[phase].includes(p))
      throw new PlatformError(`upgrade ${phase}: rendering changes secure/${p}, which is not this phase's`);
    out.push({ path: `secure/${p}`, from: imageOf(before.get(p)), to: imageOf(text) });
  }
  return out;
}

/**
 * Refuses an upgrade over a secure layer that holds anything else than what the environment
 * file renders at the journal's stage: the upgrade must publish version changes only.
 * `accept` are the renders the bucket may hold (the stage done, and the one started).
 * @throws ConflictError (exit 3) naming the files and the remedy
 */
function assertBucketMatches(
  snap: IndexSnapshot | undefined,
  accept: Map<string, string>[],
  env: string,
): void {
  if (!snap)
    throw new ConflictError(`${env}: nothing is published in the secure layer yet`, {
      hint: `run -e ${env} first`,
    });
  const digest = (s: string) => sha256(Buffer.from(s, 'utf8'));
  const differs: string[] = [];
  for (const p of accept[0]!.keys()) {
    const have = snap.index.files[p]?.sha256;
    if (!accept.some((r) => r.has(p) && digest(r.get(p)!) === have)) differs.push(`secure/${p}`);
  }
  if (differs.length)
    throw new ConflictError(
      `the secure layer's generation ${snap.index.generation} differs from what ${env}'s environment file renders, beyond versions: ${differs.slice(0, 5).join(', ')}${differs.length > 5 ? ` (+${differs.length - 5})` : ''}`,
      { hint: `publish that change first (run -e ${env}), then upgrade: an upgrade changes versions only` },
    );
}

/** The running masters in the inventory's order: a staged rollout's order (as `run`'s). */
async function runningMasters(ctx: EnvContext): Promise<string[]> {
  const { listInstances } = await import('../aws/inventory.js');
  const { instancesForLayer } = await import('../fleet/convergence.js');
  return instancesForLayer(await listInstances(ctx.aws, ctx.cfg.name), 'secure').map((i) => i.instanceId);
}

/** The plan as printed: phase, what it changes. */
interface PlanRow {
  phase: Phase;
  state: 'done' | 'to run' | 'resumes here';
  change: string;
}

/**
 * `upgrade --to vX.Y.Z`: an in-place Kubernetes upgrade of the control plane, then the
 * workers (src/upgrade/phases.ts). First the plan — the version-skew preflight against what
 * the cluster runs, the phases still to run (a journal in the cluster state resumes an
 * interrupted upgrade) and what each changes — with nothing written. `--plan` stops there;
 * otherwise it asks (play-*: y/N; others: the environment name typed back, or
 * `--yes --confirm ENV`), then runs the phases: an etcd snapshot (src/backup/, verified after
 * upload), etcd, the API servers, controller-manager and scheduler each as a staged rollout
 * of the secure layer (one master at a time, each after the last reports healthy), validate
 * between them, then the environment file's versions, the launch templates (Terraform) and
 * `roll compute`. How the versions reach the manifests: src/upgrade/stage.ts.
 * @returns 0 when the preflight passes (--plan) or the upgrade completed
 * @throws PreflightError (exit 2) naming each refused rule, before any write; UserError (2)
 *   for a bad flag, or without a TTY and --yes (after the plan, before any write);
 *   ConflictError (3) for another upgrade or operation in progress, a secure layer with other
 *   changes, a rollout not ended, or (--etcd-via-bastion) a tunnel through the bastion that
 *   does not open (before anything is written); PlatformError (1) naming the master or the validate
 *   failure a phase stopped at (a rerun resumes there); AbortError (130) when declined
 */
export async function upgradeCommand(o: UpgradeOptions, context: CommandContext): Promise<number> {
  if (!/^v\d+\.\d+\.\d+$/.test(o.to)) throw new UserError(`--to ${o.to}: a release such as v1.35.0`);
  if (o.etcd !== undefined && !/^v\d+\.\d+\.\d+$/.test(o.etcd))
    throw new UserError(`--etcd ${o.etcd}: a release such as v3.6.5`);
  if (o.etcdViaBastion && o.etcdEndpoint !== undefined)
    throw new UserError('--etcd-via-bastion and --etcd-endpoint: give one route to etcd, not both');
  if (o.confirm !== undefined && o.confirm !== o.env)
    throw new UserError(`--confirm ${o.confirm} does not match the environment ${o.env}`);
  const rolloutTimeoutS = seconds('rollout-timeout', o.rolloutTimeout, 300, 1, 86_400);
  const validateTimeoutS = seconds('validate-timeout', o.validateTimeout, 900, 1, 86_400);
  const validateIntervalS = seconds('validate-interval', o.validateInterval, 10, 0.05, 3600);
  const replaceTimeoutS = seconds('replace-timeout', o.replaceTimeout, 900, 1, 86_400);
  const drainTimeoutS = seconds('drain-timeout', o.drainTimeout, 900, 1, 86_400);
  const pollS = seconds('poll', o.poll, 5, 0.05, 600);

  const ctx = await context.openEnvironment({ env: o.env, local: o.local, quiet: Boolean(o.json) });
  let tunnel: import('../ssh/tunnel.js').BastionTunnel | undefined;
  try {
    const env = ctx.cfg.name;
    const { store } = await secretStore(ctx);
    const { environmentState } = await import('../state/open.js');
    const { assertNotDowngrade } = await import('../state/store.js');
    const { toolkitVersion } = await import('../version.js');
    const stateStore = await environmentState(ctx.aws, env, ctx.names);
    const snap = await stateStore.read();
    assertNotDowngrade(snap.state, toolkitVersion(), Boolean(o.allowDowngrade), stateStore.where);

    const kc = await loadKubeconfig(o.kubeconfig, secretsDir(env), store);
    const kube = await kubeApiFrom(kc.text);
    const kubectl = await exec('kubectl', ['version', '--client', '-o', 'json'], {
      cwd: process.cwd(),
      reject: false,
    }).catch(() => undefined);
    const kubectlJson = kubectl?.exitCode === 0 ? kubectl.stdout : undefined;
    const target: UpgradeTarget = { kubernetes: o.to, etcd: o.etcd ?? ctx.cfg.etcdVersion };

    // ---- the plan: reads only ----
    const record = snap.state.upgrade ?? null;
    const journal: UpgradeJournal | null = record
      ? { target: record.target, done: record.done as Phase[], started: record.started as Phase | null }
      : null;
    const todo = remainingPhases(journal, target); // ConflictError for an unfinished upgrade elsewhere
    const resuming = todo.length < PHASES.length;
    const from: UpgradeTarget =
      resuming && record ? record.from : { kubernetes: ctx.cfg.kubernetesVersion, etcd: ctx.cfg.etcdVersion };
    log.step(
      `${resuming ? 'resuming the upgrade of' : 'upgrade'} ${env}: Kubernetes ${from.kubernetes} → ${target.kubernetes}, etcd ${from.etcd} → ${target.etcd} (through ${kube.server})`,
    );
    const findings = await clusterPreflight(kube, target, kubectlJson);
    const refusedEarly = findings.some((f) => f.severity === 'refuse');
    // --json: one document on stdout — the findings alone when refused, else with the phases
    if (o.json && refusedEarly) context.stdout.write(`${JSON.stringify({ preflight: findings }, null, 2)}\n`);
    else if (!o.json && findings.length)
      context.stdout.write(
        `${await renderTable(
          ['Rule', 'Severity', 'Finding', 'Source'],
          findings.map((f) => [f.rule, f.severity, f.message, f.source]),
        )}\n`,
      );
    const refused = findings.filter((f) => f.severity === 'refuse');
    if (refused.length) throw new PreflightError(refused);
    log.info(`preflight passed${findings.length ? ` with ${findings.length} warning(s)` : ''}`);

    const done = journal && resuming ? journal.done : [];
    const started = journal && resuming ? journal.started : null;
    const stage = lastChangingDone(done);
    const renders = new Map<Phase | null, Map<string, string>>();
    const renderAt = async (p: Phase | null) => {
      if (!renders.has(p)) renders.set(p, await renderSecure(ctx, versionsAfter(p, from, target)));
      return renders.get(p)!;
    };
    const secureSnap = await store.readIndex('secure');
    const current = secureSnap && secureSnap !== 'not-modified' ? secureSnap : undefined;
    assertBucketMatches(
      current,
      [await renderAt(stage), ...(isChanging(started) ? [await renderAt(started)] : [])],
      env,
    );
    // the rest of the working copy's secure layer (PKI, kubeconfigs) must be the bucket's:
    // a phase publishes the whole directory and must carry nothing but its manifests
    const { readLayerDir } = await import('../secrets/local.js');
    const { planPublish } = await import('../secrets/index-format.js');
    const rendered = await renderAt(stage);
    const local = planPublish(await readLayerDir(secretsDir(env), 'secure'), current?.index);
    const stray = [...local.added, ...local.changed, ...local.modeChanged, ...local.removed].filter(
      (p) => !rendered.has(p),
    );
    if (stray.length)
      throw new ConflictError(
        `${displayPath(path.join(secretsDir(env), 'secure'))} differs from the bucket's generation ${current?.index.generation}: ${stray.slice(0, 5).join(', ')}${stray.length > 5 ? ` (+${stray.length - 5})` : ''}`,
        { hint: `fetch-secrets -e ${env} (or publish it with run -e ${env}) first` },
      );
    const rows: PlanRow[] = [];
    let prev: Phase | null = null;
    const changes = new Map<ChangingPhase, FileChange[]>();
    for (const p of PHASES) {
      let change = '';
      if (isChanging(p)) {
        const c = phaseChanges(p, await renderAt(prev), await renderAt(p));
        changes.set(p, c);
        change = c.length
          ? `staged rollout of the secure layer, one master at a time: ${c.map((f) => `${f.path} ${f.from} → ${f.to}`).join('; ')}`
          : 'nothing (already at the target)';
        prev = p;
      } else if (p === 'preflight') change = 'the version-skew rules above';
      else if (p === 'snapshot')
        change = `etcd snapshot ${
          o.etcdViaBastion
            ? `through ${await bastionRoute(ctx)}`
            : `from ${o.etcdEndpoint ?? DEFAULT_ETCD_ENDPOINT}`
        } to s3://${ctx.names.secretsBucket}/backups/etcd/, verified`;
      else if (p === 'workers')
        change = `${displayPath(ctx.cfg.file)}: KUBERNETES_VERSION=${target.kubernetes}, ETCD_VERSION=${target.etcd}; ${o.skipTerraform ? 'Terraform skipped (--skip-terraform)' : 'terraform apply of the launch templates only'}; roll compute (drain, replace one at a time)`;
      else change = 'validate until it passes twice';
      rows.push({
        phase: p,
        state: !todo.includes(p) ? 'done' : p === todo[0] && resuming ? 'resumes here' : 'to run',
        change,
      });
    }
    if (o.json)
      context.stdout.write(
        `${JSON.stringify({ preflight: findings, from, target, phases: rows }, null, 2)}\n`,
      );
    else
      context.stdout.write(
        `${await renderTable(
          ['Phase', 'State', 'What changes'],
          rows.map((r) => [r.phase, r.state, r.change]),
        )}\n`,
      );
    if (o.plan) {
      if (o.etcdViaBastion && todo.includes('snapshot')) {
        const { envSshPaths } = await import('../ssh/config.js');
        const { existsSync } = await import('node:fs');
        if (!existsSync(envSshPaths(env).config))
          log.warn(
            `${envSshPaths(env).config} does not exist: the upgrade would refuse; eval "$(agent-setup -e ${env})" writes it`,
          );
      }
      log.step(`${env}: plan only: nothing was written`);
      return 0;
    }

    // ---- the confirmation ----
    const play = env.startsWith('play-');
    const hint = `for scripts: upgrade -e ${env} --to ${target.kubernetes} --yes${play ? '' : ` --confirm ${env}`}`;
    if (!o.yes && !process.stdin.isTTY) {
      throw new UserError(
        'upgrade would ask before changing anything, but stdin is not a terminal; nothing was changed',
        {
          hint: `review with: upgrade -e ${env} --to ${target.kubernetes} --plan; ${hint}`,
        },
      );
    }
    if (o.yes) {
      if (!play && o.confirm !== env)
        throw new UserError(`upgrading ${env} restarts its control plane: --yes also needs --confirm ${env}`);
    } else if (play) {
      await confirmOrAbort(`upgrade ${env} to Kubernetes ${target.kubernetes}?`, hint);
    } else {
      await typeBackOrAbort(
        `this restarts every control-plane component and replaces every worker: type the environment name to upgrade ${env} to ${target.kubernetes}`,
        env,
        hint,
      );
    }

    // ---- the phases ----
    const owner: UpgradeOwner = { arn: ctx.identity.arn, host: os.hostname(), pid: process.pid };
    const held = heldByOther(snap.state.upgrade, owner, new Date(), isAlive);
    if (held)
      throw new ConflictError(
        `the upgrade of ${env} to ${record?.target.kubernetes} is running elsewhere: ${held}`,
        {
          hint: 'wait for it; if its holder is gone, a rerun resumes it once the heartbeat is older than 300 s',
        },
      );
    if (o.etcdViaBastion && todo.includes('snapshot')) {
      const { chooseTunnelMember, openBastionTunnel } = await import('../ssh/tunnel.js');
      const { etcdMembers } = await import('../config/topology.js');
      // ConflictError (3) naming the config file or the bastion, before any write
      const pki = path.join(secretsDir(env), 'secure', 'pki');
      tunnel = await openBastionTunnel({
        env,
        member: chooseTunnelMember(etcdMembers(ctx.cfg)),
        consequence: 'nothing was written',
        tls: {
          caFile: o.etcdCacert ?? path.join(pki, 'etcd', 'ca.crt'),
          certFile: o.etcdCert ?? path.join(pki, 'apiserver-etcd-client.crt'),
          keyFile: o.etcdKey ?? path.join(pki, 'apiserver-etcd-client.key'),
        },
      });
    }
    const deps = upgradeDeps(ctx, o, {
      owner,
      ...(tunnel ? { tunnel } : {}),
      store,
      stateStore,
      kube,
      kubectlJson,
      from,
      renderAt,
      timeouts: {
        rolloutTimeoutS,
        validateTimeoutS,
        validateIntervalS,
        replaceTimeoutS,
        drainTimeoutS,
        pollS,
      },
    });
    // the heartbeat: a long phase (a rollout, roll compute) keeps the upgrade held
    const hb = setInterval(() => {
      void stateStore
        .update(
          (s) =>
            s.upgrade && s.upgrade.owner?.pid === owner.pid && s.upgrade.owner.host === owner.host
              ? { ...s, upgrade: { ...s.upgrade, heartbeatAt: new Date().toISOString() } }
              : undefined,
          { allowDowngrade: Boolean(o.allowDowngrade), retries: 3 },
        )
        .catch(() => {});
    }, 60_000);
    hb.unref();
    const r = await runUpgrade(deps, target).finally(() => clearInterval(hb));
    log.step(
      `${env} runs Kubernetes ${target.kubernetes} and etcd ${target.etcd}: ${r.ran.length} phase(s) run${r.resumed ? ` (resumed; ${r.skipped.length} done before)` : ''}`,
    );
    log.info(
      `${displayPath(ctx.cfg.file)} now holds KUBERNETES_VERSION=${target.kubernetes} and ETCD_VERSION=${target.etcd}: commit it. The masters' kubelets move with the next roll secure.`,
    );
    return 0;
  } finally {
    await tunnel?.close();
    await ctx.close();
  }
}

interface Wiring {
  owner: UpgradeOwner;
  /** --etcd-via-bastion: the open tunnel the snapshot phase takes its snapshot through */
  tunnel?: import('../ssh/tunnel.js').BastionTunnel;
  store: SecretStore;
  stateStore: ClusterStateStore;
  kube: KubeApi;
  kubectlJson: string | undefined;
  from: UpgradeTarget;
  renderAt: (p: Phase | null) => Promise<Map<string, string>>;
  timeouts: {
    rolloutTimeoutS: number;
    validateTimeoutS: number;
    validateIntervalS: number;
    replaceTimeoutS: number;
    drainTimeoutS: number;
    pollS: number;
  };
}

/** The runner's dependencies on the real toolkit: cluster state, backups, rollouts, validate, roll. */
function upgradeDeps(ctx: EnvContext, o: UpgradeOptions, w: Wiring): UpgradeDeps {
  const env = ctx.cfg.name;
  const allowDowngrade = Boolean(o.allowDowngrade);
  const validate = async (): Promise<ValidateResult> => {
    const { attemptValidation, collectSnapshot, validateLoop } = await import('../validate/run.js');
    const { recordValidation } = await import('./validate.js');
    const state = (await w.stateStore.read()).state;
    const r = await validateLoop({
      wait: true,
      count: 2,
      intervalS: w.timeouts.validateIntervalS,
      timeoutS: w.timeouts.validateTimeoutS,
      attempt: () =>
        attemptValidation(() =>
          collectSnapshot({ aws: ctx.aws, environment: env, store: w.store, kube: w.kube, state }),
        ),
      onAttempt: ({ failures }) => {
        if (failures.length)
          log.info(
            `  not yet: ${failures[0]!.message}${failures.length > 1 ? ` (+${failures.length - 1})` : ''}`,
          );
      },
    });
    await recordValidation(w.stateStore, r);
    return r;
  };

  /** etcdctl snapshot save through `tunnel` (or --etcd-endpoint), sealed, uploaded, verified. */
  const snapshotThrough = async (tunnel: import('../ssh/tunnel.js').BastionTunnel | undefined) => {
    const { takeBackup } = await import('../backup/backup.js');
    const { etcdctlSource } = await import('../backup/etcdctl.js');
    const { endpointOf } = await import('../backup/node-command.js');
    const url = tunnel?.url ?? o.etcdEndpoint ?? DEFAULT_ETCD_ENDPOINT;
    const pki = path.join(secretsDir(env), 'secure', 'pki');
    const tlsGiven = o.etcdCacert || o.etcdCert || o.etcdKey;
    const tls =
      tlsGiven || !url.startsWith('https:')
        ? { cacert: o.etcdCacert, cert: o.etcdCert, key: o.etcdKey }
        : {
            cacert: path.join(pki, 'etcd', 'ca.crt'),
            cert: path.join(pki, 'apiserver-etcd-client.crt'),
            key: path.join(pki, 'apiserver-etcd-client.key'),
          };
    const endpoint = endpointOf({ endpoint: url, ...tls });
    const backups = await backupStore(ctx);
    const r = await takeBackup(backups, etcdctlSource(endpoint), {
      member: tunnel
        ? `upgrade-${tunnel.member.name}`
        : `upgrade-${new URL(url).hostname.replaceAll('.', '-')}`,
      etcdVersion: w.from.etcd,
    });
    await w.stateStore
      .update((s) => ({ ...s, lastBackup: { at: new Date().toISOString(), key: r.key } }), {
        allowDowngrade,
      })
      .catch((e: unknown) =>
        log.warn(`the cluster state's last backup was not updated: ${(e as Error).message}`),
      );
    return r.key;
  };
  return {
    versions: async () => {
      const [nodes, pods] = await Promise.all([w.kube.listNodes(), w.kube.listPods()]);
      return versionsFrom(nodes, pods, w.kubectlJson ? kubectlVersionFrom(w.kubectlJson) : undefined);
    },
    loadJournal: async () => {
      const u = (await w.stateStore.read()).state.upgrade;
      return u ? { target: u.target, done: u.done as Phase[], started: u.started as Phase | null } : null;
    },
    saveJournal: async (j) => {
      await w.stateStore.update(
        (s) => {
          const held = heldByOther(s.upgrade, w.owner, new Date(), isAlive);
          if (held) throw new ConflictError(`the upgrade of ${env} was taken over: ${held}; stopping`);
          if (!j) return { ...s, upgrade: null };
          const now = new Date().toISOString();
          const prev =
            s.upgrade &&
            s.upgrade.target.kubernetes === j.target.kubernetes &&
            s.upgrade.target.etcd === j.target.etcd &&
            s.upgrade.done.length < PHASES.length
              ? s.upgrade
              : null;
          const events = [...(prev?.events ?? [])];
          // the runner saves once when a phase starts (started set) and once when it ends:
          // a resumed phase is recorded as started again
          if (j.started) events.push({ phase: j.started, event: 'started', at: now });
          for (const p of j.done)
            if (!events.some((e) => e.phase === p && e.event === 'done'))
              events.push({ phase: p, event: 'done', at: now });
          const stageNow = j.started ?? lastChangingDone(j.done);
          const desired = versionsAfter(stageNow, w.from, j.target);
          const record: UpgradeRecord = {
            target: j.target,
            from: prev?.from ?? w.from,
            done: [...j.done],
            started: j.started,
            desired: { ...desired },
            events,
            startedAt: prev?.startedAt ?? now,
            updatedAt: now,
            owner: w.owner,
            heartbeatAt: now,
          };
          const complete = j.done.length === PHASES.length;
          return {
            ...s,
            upgrade: record,
            ...(complete
              ? {
                  versions: {
                    ...s.versions,
                    secure: {
                      desired: { kubernetes: j.target.kubernetes, etcd: j.target.etcd },
                      observed: s.versions.secure?.observed ?? { kubernetes: null, etcd: null },
                    },
                    compute: {
                      desired: { kubernetes: j.target.kubernetes, etcd: null },
                      observed: s.versions.compute?.observed ?? { kubernetes: null, etcd: null },
                    },
                  },
                }
              : {}),
          };
        },
        // a lost race with this upgrade's own heartbeat (or a validate record) is re-applied on
        // the new revision; another holder is refused inside the mutation above
        { allowDowngrade, retries: 3 },
      );
    },
    snapshot: async () => {
      // --etcd-via-bastion: opened by upgradeCommand before anything is written; reopened
      // here when its ssh has exited since, closed once the snapshot is taken
      const tunnel = w.tunnel;
      const { lastLines } = await import('../ssh/tunnel.js');
      await tunnel?.ensure();
      await tunnel?.check();
      try {
        return await snapshotThrough(tunnel);
      } catch (e) {
        const said = tunnel ? lastLines(tunnel.stderr(), 3) : '';
        if (tunnel && said) throw new PlatformError(`${(e as Error).message} (ssh: ${said})`, { cause: e });
        throw e;
      } finally {
        await tunnel?.close();
      }
    },
    rolloutControlPlane: async (components) => {
      const phase: ChangingPhase = components.includes('etcd')
        ? 'etcd'
        : components.includes('kube-apiserver')
          ? 'apiservers'
          : 'controllers';
      await publishPhase(ctx, w, phase);
    },
    rollWorkers: async (t) => {
      await setEnvironmentVersions(ctx.cfg.file, t);
      if (!o.skipTerraform) await applyLaunchTemplates(ctx, t);
      await rollCompute(ctx, w, o, validate);
      const { listInstances } = await import('../aws/inventory.js');
      const { nodeOf } = await import('../validate/checks.js');
      const workers = (await listInstances(ctx.aws, env)).filter(
        (i) => i.layer === 'compute' && i.state === 'running',
      );
      const nodes = await w.kube.listNodes();
      const behind = workers
        .map((i) => ({ i, n: nodeOf(i, nodes) }))
        .filter(({ n }) => n && n.kubeletVersion !== t.kubernetes)
        .map(({ i, n }) => `${n!.name} (${i.instanceId}) kubelet ${n!.kubeletVersion}`);
      if (behind.length)
        throw new PlatformError(
          `after roll compute, workers still run another kubelet: ${behind.join(', ')}`,
          {
            hint: o.skipTerraform
              ? 'their launch template installs the old kubelet: apply Terraform (run), then run upgrade again: it resumes at workers'
              : 'check the workers’ launch template, then run upgrade again: it resumes at workers',
          },
        );
    },
    validate: async () => {
      const r = await validate();
      return { passed: r.passed, failures: r.failures.map((f) => f.message) };
    },
    log: (line) => log.step(line),
  };
}

/**
 * One control-plane phase: renders the secure layer at the phase's versions into the working
 * copy and publishes it as a staged rollout, then drives the rollout master by master. A
 * phase resumed after an interruption publishes nothing new (the bucket holds it already)
 * and drives the rollout it left unfinished.
 * @throws ConflictError when a rollout of another generation has not ended; PlatformError
 *   naming the master that did not report healthy within the rollout timeout
 */
async function publishPhase(ctx: EnvContext, w: Wiring, phase: ChangingPhase): Promise<void> {
  const env = ctx.cfg.name;
  const secrets = secretsDir(env);
  const { writeRendered } = await import('../manifests/index.js');
  const { readLayerDir } = await import('../secrets/local.js');
  const { recordSeen } = await import('../secrets/seen.js');
  const { driveRollout, publishStaged, readRollout } = await import('../secrets/rollout.js');
  const { parseStatus } = await import('../secrets/status.js');
  const rendered = await w.renderAt(phase);
  await writeRendered(
    secrets,
    [...rendered].map(([p, content]) => ({ path: `secure/${p}`, content, mode: 0o600 })),
  );
  const base = await w.store.readIndex('secure');
  const snap = base && base !== 'not-modified' ? base : undefined;
  const files = await readLayerDir(secrets, 'secure');
  const { planPublish } = await import('../secrets/index-format.js');
  const p = planPublish(files, snap?.index);
  const extra = [...p.added, ...p.changed, ...p.modeChanged, ...p.removed].filter(
    (f) => !PHASE_FILES[phase].includes(f),
  );
  if (extra.length)
    throw new ConflictError(
      `upgrade ${phase}: the secure layer would also change ${extra.join(', ')}; nothing was published`,
      { hint: `fetch-secrets -e ${env}, then run upgrade again: it resumes at ${phase}` },
    );
  const prepared = await w.store.prepare('secure', files, { base: snap ?? null });
  if (prepared.next) {
    const masters = await runningMasters(ctx);
    if (!masters.length) throw new PlatformError(`${env}: no running master to roll ${phase} out to`);
    const published = await publishStaged(w.store, env, prepared, { order: masters, strategy: 'staged' });
    await recordSeen(secrets, { secure: published.result.generation });
    log.info(
      `secure generation ${published.result.generation}: ${PHASE_FILES[phase].join(', ')}; masters in order: ${masters.join(', ')}`,
    );
  } else {
    const existing = await readRollout(w.store, env, 'secure');
    if (
      !existing ||
      existing.record.target.generation !== snap?.index.generation ||
      existing.record.state === 'complete'
    ) {
      log.info(`secure generation ${snap?.index.generation}: ${phase} is published and rolled out already`);
      return;
    }
    if (existing.record.state === 'aborted')
      throw new ConflictError(
        `the rollout of secure generation ${existing.record.target.generation} was aborted`,
        {
          hint: 'an aborted upgrade phase is not resumed on its own: the masters run the previous generation; publish again with run, or investigate',
        },
      );
    log.info(
      `resuming the rollout of secure generation ${existing.record.target.generation} (${existing.record.state})`,
    );
  }
  const done = await driveRollout(w.store, env, 'secure', {
    timeoutS: w.timeouts.rolloutTimeoutS,
    parse: parseStatus,
    log: (l) => log.info(l),
    pollMs: Math.min(1000, w.timeouts.pollS * 1000),
  });
  log.info(`rollout of secure generation ${done.target.generation}: ${done.state}`);
}

/** Writes KUBERNETES_VERSION and ETCD_VERSION into the environment file (atomically, mode kept). */
async function setEnvironmentVersions(file: string, t: UpgradeTarget): Promise<void> {
  const text = await readFile(file, 'utf8');
  const next = setEnvKeys(text, { KUBERNETES_VERSION: t.kubernetes, ETCD_VERSION: t.etcd });
  if (next === text) return;
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFile(tmp, next, { mode: (await stat(file)).mode & 0o777 });
  await rename(tmp, file);
  log.info(`${displayPath(file)}: KUBERNETES_VERSION=${t.kubernetes}, ETCD_VERSION=${t.etcd}`);
}

/**
 * The workers phase's Terraform step: terraform plan of platform/terraform with the target
 * versions (KUBERNETES_VERSION, ETCD_VERSION of `t`, the rest from `ctx.cfg`), applied only
 * when it changes nothing but launch templates in place (the workers' and masters' kubelet
 * packages come from their user data; the ASGs follow `$Latest`, so the replacements of
 * `roll compute` boot the new version). Exported for its integration test.
 * @throws ConflictError (exit 3) when the plan changes anything else, every such resource
 *   named with its actions: nothing is applied; ExecError when terraform fails
 */
export async function applyLaunchTemplates(ctx: EnvContext, t: UpgradeTarget): Promise<void> {
  const { findKmsKeyArn } = await import('../aws/bootstrap.js');
  const { platformTerraform } = await import('../context/terraform.js');
  const { planView } = await import('../policy/index.js');
  const { classifyUpgradePlan } = await import('../upgrade/terraform-change.js');
  const at = { ...ctx, cfg: { ...ctx.cfg, kubernetesVersion: t.kubernetes, etcdVersion: t.etcd } };
  const p = await platformTerraform(at, await findKmsKeyArn(ctx.aws, ctx.names.kmsAlias));
  try {
    const summary = await p.tf.plan(p.vars, p.planFile);
    const { changed, other } = classifyUpgradePlan(planView(summary.json).resources);
    if (other.length)
      throw new ConflictError(
        `the Terraform plan at ${t.kubernetes} changes more than launch templates: ${other.map((r) => `${r.address} (${r.actions.join('+')})`).join(', ')}; nothing was applied`,
        {
          hint: `review and apply it with run -e ${ctx.cfg.name}, then run upgrade again: it resumes at workers`,
        },
      );
    if (changed.length) {
      log.info(`terraform apply: ${changed.map((r) => r.address).join(', ')}`);
      await p.tf.apply(summary.planFile);
    } else log.info('the launch templates already install the target kubelet');
  } finally {
    await p.dispose();
  }
}

/** `roll compute` through the roll runner (src/roll/runner.ts), as the roll command drives it. */
async function rollCompute(
  ctx: EnvContext,
  w: Wiring,
  o: UpgradeOptions,
  validate: () => Promise<ValidateResult>,
): Promise<void> {
  const { computeRollPlan, runRoll } = await import('../roll/runner.js');
  const env = ctx.cfg.name;
  const { plan } = await computeRollPlan(ctx.aws, env, 'compute', { force: false });
  const pending = (await w.stateStore.read()).state.operation;
  if (!plan.length && !(pending?.kind === 'roll' && pending.layer === 'compute')) {
    log.info('every worker runs its ASG’s launch template: nothing to replace');
    return;
  }
  const controller = new AbortController();
  const onSignal = () => {
    log.warn('interrupted: recording it in the journal (run upgrade again to resume)');
    controller.abort(new Error('interrupted'));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const report = await runRoll(
      {
        aws: ctx.aws,
        environment: env,
        store: w.store,
        state: w.stateStore,
        kube: w.kube,
        owner: { arn: ctx.identity.arn, host: os.hostname(), pid: process.pid },
        validate,
      },
      {
        layer: 'compute',
        force: false,
        maxUnavailable: 1,
        drainTimeoutS: w.timeouts.drainTimeoutS,
        onDrainTimeout: 'fail',
        replaceTimeoutS: w.timeouts.replaceTimeoutS,
        pollS: w.timeouts.pollS,
        evictRetryS: 5,
        allowDowngrade: Boolean(o.allowDowngrade),
        signal: controller.signal,
      },
      plan,
    );
    log.info(`roll compute: ${report.replaced.length} replaced`);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
