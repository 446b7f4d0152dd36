import { bootstrap } from '../aws/bootstrap.js';
import {
  type ChangeSet,
  type ChangeSetView,
  changeSetJson,
  confirmationFor,
  discardEarlyPlan,
  hasChanges,
  type LayerChange,
  planRun,
  startGuessedPlan,
} from '../changeset/plan.js';
import { applyRestore, disposeRestore } from '../changeset/restore.js';
import { publishAgent } from '../context/agent-bundle.js';
import type { CommandContext } from '../context/command.js';
import type { EnvContext } from '../context/environment.js';
import { backupStore, secretStore } from '../context/environment.js';
import { platformTerraform } from '../context/terraform.js';
import { ConflictError, ExitCode, TimeoutError, UserError } from '../errors.js';
import { ExecError } from '../exec/index.js';
import { log } from '../log.js';
import { displayPath, secretsDir } from '../paths.js';
import { confirmOrAbort, typeBackOrAbort } from '../prompt.js';
import { planPublish } from '../secrets/index-format.js';
import { readLayerDir } from '../secrets/local.js';
import {
  assertNoRolloutInProgress,
  driveRollout,
  publishStaged,
  type RolloutRecord,
} from '../secrets/rollout.js';
import { recordSeen } from '../secrets/seen.js';
import type { PublishResult } from '../secrets/store.js';

/** Options of `run` (README "run"). */
export interface RunOptions {
  env: string;
  local?: boolean;
  /** apply without asking (outside play-* a risky change also needs `confirm`) */
  yes?: boolean;
  /** the environment name, typed back, for scripts (with --yes) */
  confirm?: string;
  /** show the change set and stop: nothing is written anywhere */
  plan?: boolean;
  /** print the change set as JSON on stdout (progress stays on stderr) */
  json?: boolean;
  /** with --plan: exit 7 when changes are pending, 0 when none */
  exitCode?: boolean;
  /** print Terraform's full plan text too */
  diff?: boolean;
  /** with --plan: save the change set, encrypted, to this file (for `--apply`) */
  out?: string;
  /** apply the change set saved in this file by `--plan --out`, or refuse a stale one */
  apply?: string;
  /** bootstrap, PKI, render and publish only */
  skipTerraform?: boolean;
  /**
   * how a new secure generation reaches the running masters (README "Staged rollouts")
   * @default staged
   */
  rollout?: 'staged' | 'all-at-once';
  /** staged: seconds each master may take to report healthy on the target @default 300 */
  rolloutTimeout?: string | number;
  /** act on a cluster state last written by a newer toolkit (kops#1612) */
  allowDowngrade?: boolean;
  /** wait until every master's agent applied the published secure generation */
  wait?: boolean;
  /** seconds --wait waits @default 300 */
  waitTimeout?: string | number;
}

/** Times a step and prints it as progress on stderr: `==> name` … `    done in 1.2 s`. */
export async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  log.step(name);
  const t0 = performance.now();
  const r = await fn();
  log.info(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

/**
 * `run`: plan → print → one confirmation → apply (DESIGN.md §1).
 *
 * The plan ({@link planRun}) makes read requests only and writes no file: bootstrap actions,
 * PKI to generate (in memory), per-layer diffs against the bucket's index, the agent, the
 * Terraform plan (saved to a temporary plan file, -lock=false; on a new environment against an
 * empty local state) and the policy report. `--plan`, a refusal by policy and a declined
 * confirmation stop there. The apply then bootstraps, writes the PKI and manifests, publishes
 * every layer against the indexes the plan was computed from (a moved generation is a
 * conflict, exit 3), publishes the agent and applies exactly the saved Terraform plan (a state
 * changed meanwhile is a conflict; on a new environment the plan is recomputed against the new
 * state bucket and must list the same resources and actions).
 * @returns 0; 7 with --exit-code when --plan found changes
 * @throws PolicyError (6), AbortError (130) when declined, UserError (2) on a cluster state
 *   written by a newer toolkit (unless --allow-downgrade, before anything is planned), UserError (2) without a TTY and
 *   without --yes (after the plan is printed, before any write), ConflictError (3), TimeoutError (5) with --wait
 */
export async function runCommand(o: RunOptions, context: CommandContext): Promise<number> {
  if (o.confirm !== undefined && o.confirm !== o.env)
    throw new UserError(`--confirm ${o.confirm} does not match the environment ${o.env}`);
  if (o.exitCode && !o.plan) throw new UserError('--exit-code goes with --plan');
  if (o.out !== undefined && !o.plan) throw new UserError('--out goes with --plan (run --plan --out FILE)');
  if (o.apply !== undefined) {
    const bad = (['plan', 'out', 'json', 'diff', 'skipTerraform'] as const).filter(
      (k) => o[k] !== undefined && o[k] !== false,
    );
    if (bad.length)
      throw new UserError(
        `--apply FILE applies a saved plan as it is: it does not go with ${bad.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`).join(', ')}`,
      );
    // the file is read before any AWS request: a missing or unreadable one is bad input
    const { readSavedPlanBytes } = await import('../changeset/saved.js');
    const bytes = await readSavedPlanBytes(o.apply);
    return applySavedPlan(o, context, o.apply, bytes);
  }
  if (o.out !== undefined) await (await import('../changeset/saved.js')).assertWritableTarget(o.out);
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  let cs: ChangeSet | undefined;
  // Terraform's plan, most of a no-op run's time, starts now with the variables last applied;
  // planRun uses it if the inputs it reads give the same variables (else it plans again)
  const early = o.skipTerraform ? undefined : startGuessedPlan(ctx);
  try {
    const { cfg } = ctx;
    // its set-up (version, init check) is CPU work on this event loop, as are the reads
    // below: it goes first, so that Terraform's plan is not kept waiting behind them
    await early?.begun;
    // a cluster state written by a newer toolkit is refused before anything is planned
    // (a read: GetObject, and Decrypt of its data key; none on a new environment)
    await readGuardedState(ctx, o, { refuseUpgrade: !o.plan });
    // a saved plan records the state object's version read before the plan: a state written
    // while the plan runs makes it stale, never the other way round
    const saved = o.out !== undefined ? await import('../changeset/saved.js') : undefined;
    const stateVersionId = saved ? await saved.stateVersion(ctx) : null;
    cs = await step('plan: bootstrap, PKI, layers, agent, terraform, policy', () =>
      planRun(ctx, { skipTerraform: Boolean(o.skipTerraform), ...(early ? { early } : {}) }),
    );
    const { formatChangeSet } = await import('../changeset/format.js');
    const { assertPolicy, printPolicyReport } = await import('./policy.js');
    const terraformText =
      o.diff && cs.terraform?.summary.changes
        ? await cs.terraform.tf.tf.showPlan(cs.terraform.summary.planFile)
        : undefined;
    if (o.json) context.stdout.write(`${JSON.stringify(changeSetJson(cs), null, 2)}\n`);
    else {
      context.stdout.write(formatChangeSet(cs, terraformText ? { terraformText } : {}));
      context.stdout.write('\n## policy\n');
      await printPolicyReport(cs.policy, context.stdout);
    }
    assertPolicy(cs.policy);
    if (saved && o.out !== undefined) {
      const plan = await saved.savedPlanOf(ctx, cs, stateVersionId);
      const bytes = await saved.writeSavedPlan(
        o.out,
        plan,
        await saved.savedPlanKeys(ctx, plan.inputs.kmsKeyArn),
      );
      log.step(
        `plan saved to ${displayPath(o.out)} (${bytes} bytes, encrypted with the environment's KMS key, mode 600): apply it with run -e ${cfg.name} --apply ${displayPath(o.out)}`,
      );
    }
    const secureChange = cs.layers.find(
      (l) => l.layer === 'secure' && l.generation > 0 && layerChanges(l) > 0,
    );
    if (secureChange)
      log.info(
        o.rollout === 'all-at-once'
          ? `secure generation ${secureChange.generation + 1} reaches every running master at once (--rollout all-at-once)`
          : `secure generation ${secureChange.generation + 1} reaches the running masters one at a time, each after the last reports healthy (--rollout staged)`,
      );
    const pending = hasChanges(cs);
    if (!pending) {
      log.step(`${cfg.name}: no changes; everything is up to date`);
      if (cs.restored) {
        if (o.plan) log.info(`the apply would restore ${displayPath(secretsDir(cfg.name))} from the bucket`);
        else await restoreWorkingCopy(cs);
      }
      return o.plan ? ExitCode.ok : converge(ctx, o, 0);
    }
    if (o.plan) {
      log.step(
        `${cfg.name}: plan only: nothing was written${o.out !== undefined ? ` but ${displayPath(o.out)}` : ''}`,
      );
      return o.exitCode ? ExitCode.changesPending : ExitCode.ok;
    }
    await confirmApply(o, ctx, cs, `run -e ${cfg.name} --plan`);
    const secureGeneration = await applyRun(ctx, cs, {
      allowDowngrade: Boolean(o.allowDowngrade),
      rollout: o.rollout ?? 'staged',
      rolloutTimeoutS: Number(o.rolloutTimeout ?? 300),
    });
    return converge(ctx, o, secureGeneration);
  } finally {
    // without a change set, the early plan was not used (planRun disposed of it if it had it;
    // a second discard only waits for nothing)
    if (!cs) await discardEarlyPlan(early);
    await cs?.terraform?.tf.dispose();
    await disposeRestore(cs?.restored);
    await ctx.close();
  }
}

/**
 * The one confirmation before an apply (README "run" step 3): `play-*` y/N; elsewhere, when
 * the change destroys or replaces a resource or changes a live secure layer's static pods,
 * the environment name typed back; `--yes` (with `--confirm ENV` for such a change) for
 * scripts.
 * @param review the command that shows the change again, for the hint
 * @throws UserError (2) without a TTY and without --yes, or --yes without the needed
 *   --confirm; AbortError (130) when declined
 */
export async function confirmApply(
  o: Pick<RunOptions, 'yes' | 'confirm'>,
  ctx: EnvContext,
  cs: ChangeSetView,
  review: string,
  scripted = `run -e ${ctx.cfg.name} --yes`,
): Promise<void> {
  const { cfg } = ctx;
  const how = confirmationFor(cs);
  const hint = `for scripts: ${scripted}${how === 'type-back' ? ` --confirm ${cfg.name}` : ''}`;
  // the plan is printed first (Terraform's habit), so a refusal without a TTY still shows
  // what would change, and bad input (a template, a policy) is reported before this
  if (!o.yes && !process.stdin.isTTY) {
    throw new UserError('run would ask before applying, but stdin is not a terminal; nothing was changed', {
      hint: `review with: ${review}; ${hint}`,
    });
  }
  if (o.yes) {
    if (how === 'type-back' && o.confirm !== cfg.name)
      throw new UserError(
        `this change destroys or replaces resources or changes the secure layer's static pods of ${cfg.name}: --yes also needs --confirm ${cfg.name}`,
      );
  } else if (how === 'type-back') {
    await typeBackOrAbort(
      `this change destroys or replaces resources or restarts control-plane static pods: type the environment name to apply it to ${cfg.name}`,
      cfg.name,
      hint,
    );
  } else {
    await confirmOrAbort(`apply this change to ${cfg.name} (account ${ctx.identity.account})?`, hint);
  }
}

/** Writes the working copy the plan restored from the bucket into secrets/<env>/. */
async function restoreWorkingCopy(cs: ChangeSet): Promise<void> {
  const restored = cs.restored!;
  const secrets = secretsDir(cs.environment);
  await step(`restore ${displayPath(secrets)} from the bucket`, async () => {
    await applyRestore(restored, secrets);
    log.info(
      `${restored.files} files: ${Object.entries(restored.generations)
        .map(([l, g]) => `${l} generation ${g}`)
        .join(', ')}`,
    );
  });
}

/** How {@link applyRun} brings a new secure generation to the running masters. */
export interface ApplyOptions {
  /**
   * staged: one master at a time, each after the last reported healthy on it (etcd member
   * healthy, API server /readyz; src/secrets/README.md "Staged rollout"); all-at-once: every
   * master takes it at its next pass (playgrounds)
   * @default staged
   */
  rollout?: 'staged' | 'all-at-once';
  /** staged: seconds each master may take to report healthy on the new generation @default 300 */
  rolloutTimeoutS?: number;
  /** poll interval of the rollout's driver, milliseconds @default 1000 */
  rolloutPollMs?: number;
  /** write the cluster state even when a newer toolkit wrote it last */
  allowDowngrade?: boolean;
}

/**
 * Applies a change set computed by planRun, in order: bootstrap, PKI, manifests, layers
 * (against the indexes the plan read; a new secure generation, when masters run, as a
 * staged rollout: its record first, then the index), agent, the saved Terraform plan, and
 * last the rollout driven master by master.
 * @returns the secure layer's generation after the publish
 * @throws ConflictError (3) when a layer, the local files or the Terraform state moved since
 *   the plan, or a rollout of the secure layer has not ended; PlatformError (1) naming the
 *   master that did not report healthy (the others stay on the previous generation)
 */
export async function applyRun(ctx: EnvContext, cs: ChangeSet, opts: ApplyOptions = {}): Promise<number> {
  const { cfg } = ctx;
  const secrets = secretsDir(cfg.name);
  // an unfinished rollout of the secure layer is refused before anything is written
  const secureChange = cs.layers.find((l) => l.layer === 'secure' && l.base && layerChanges(l) > 0);
  if (secureChange) {
    const { store } = await secretStore(ctx);
    await assertNoRolloutInProgress(store, cfg.name, 'secure', secureChange.generation);
  }
  if (cs.restored) await restoreWorkingCopy(cs);
  const boot = await step('bootstrap: KMS key, state bucket, secrets bucket', () =>
    bootstrap(ctx.aws, ctx.names, cfg.name),
  );
  await step(`PKI and kubeconfigs in ${displayPath(secrets)}`, async () => {
    const { applyPki } = await import('../secrets/pki/index.js');
    // planned against the restored copy, written into the working copy it was restored to
    const r = await applyPki(cs.restored ? { ...cs.pki, root: secrets } : cs.pki);
    log.info(`${r.created.length} created, ${r.kept.length} kept`);
  });
  await step(`write manifests into ${displayPath(secrets)}`, async () => {
    const { writeRendered } = await import('../manifests/index.js');
    const w = await writeRendered(secrets, cs.rendered);
    log.info(`${w.written.length} written, ${w.unchanged.length} unchanged`);
  });
  const { store, keys } = await secretStore(ctx, boot.kmsKeyArn);
  let secureGeneration = cs.layers.find((l) => l.layer === 'secure')?.generation ?? 0;
  const generations: Record<string, number> = {};
  const strategy = opts.rollout ?? 'staged';
  let staged: RolloutRecord | undefined;
  await step(`publish to s3://${ctx.names.secretsBucket}`, async () => {
    // the local files must be those the plan was computed from, and every layer is uploaded
    // before any index is written against the index the plan read: a conflict on the first
    // index write publishes nothing
    const prepared = [];
    for (const change of cs.layers) {
      const files = await readLayerDir(secrets, change.layer);
      const now = Object.fromEntries(files.map((f) => [f.path, f.sha256]));
      if (JSON.stringify(now) !== JSON.stringify(change.digests))
        throw new ConflictError(
          `secrets/${cfg.name}/${change.layer} changed since the plan; nothing was published`,
          {
            hint: `run -e ${cfg.name} again to see the current change`,
          },
        );
      const again = planPublish(files, change.base?.index);
      if (JSON.stringify(again) !== JSON.stringify(change.plan))
        throw new ConflictError(
          `layer ${change.layer}: the change differs from the plan; nothing was published`,
        );
      prepared.push(await store.prepare(change.layer, files, { base: change.base }));
    }
    // a new secure generation over a previous one reaches the running masters through a
    // rollout record (staged unless --rollout all-at-once); checked before any index is written
    const secure = prepared.find((p) => p.result.layer === 'secure' && p.next && p.base);
    const masters = secure ? await runningMasters(ctx) : [];
    if (secure && masters.length)
      await assertNoRolloutInProgress(store, cfg.name, 'secure', secure.base?.index.generation);
    for (const p of prepared) {
      let r: PublishResult;
      if (p === secure && masters.length) {
        const published = await publishStaged(store, cfg.name, p, { order: masters, strategy });
        r = published.result;
        if (strategy === 'staged') staged = published.record;
        log.info(
          `secure: rollout record for generation ${r.generation} (${strategy}, masters in order: ${masters.join(', ')})`,
        );
      } else r = p.next ? await store.commit(p) : p.result;
      if (r.generation > 0) {
        await recordSeen(secrets, { [r.layer]: r.generation });
        generations[r.layer] = r.generation;
      }
      if (r.layer === 'secure') secureGeneration = r.generation;
      log.info(`${r.layer}: generation ${r.generation}${r.published ? '' : ' (unchanged)'}`);
    }
    log.info(`${store.puts} PutObject, ${keys.requests} KMS requests`);
  });
  await step('record generations, certificates and versions in the cluster state', () =>
    recordRunState(ctx, generations, Boolean(opts.allowDowngrade)),
  );
  if (cs.agent.publish)
    await step('publish the manifest-sync agent', () => publishAgent(ctx, boot.kmsKeyArn));
  const t = cs.terraform;
  if (t?.summary.changes) {
    if (t.emptyState) {
      // planned against an empty local state before the state bucket existed: plan again
      // against it (now empty too) and apply only if it is the same change
      const real = await step('terraform init', () => platformTerraform(ctx, boot.kmsKeyArn));
      const summary = await step('terraform plan (against the new state bucket)', () =>
        real.tf.plan(real.vars, real.planFile),
      );
      const { isChange, planView } = await import('../policy/index.js');
      const now = planView(summary.json)
        .resources.filter(isChange)
        .map((r) => ({ address: r.address, actions: r.actions }));
      if (JSON.stringify(now) !== JSON.stringify(t.resources))
        throw new ConflictError(
          'the Terraform plan against the new state differs from the one shown; nothing applied',
          {
            hint: `run -e ${cfg.name} again to review the current plan`,
          },
        );
      await step('terraform apply', () => real.tf.apply(summary.planFile));
    } else {
      await step('terraform apply (the plan shown)', () =>
        t.tf.tf.apply(t.summary.planFile).catch((e: unknown) => {
          if (e instanceof ExecError && /stale|Saved plan/i.test(e.message))
            throw new ConflictError('the Terraform state changed since the plan; nothing was applied', {
              cause: e,
              hint: `run -e ${cfg.name} again to review the current plan`,
            });
          throw e;
        }),
      );
      // next time the plan can use the environment's own data directory (init skipped), and
      // start with the variables applied now (they are the guess of the next run's early plan)
      const own = t.tf.persistent
        ? t.tf
        : await platformTerraform(ctx, { kmsKeyArn: boot.kmsKeyArn, vars: t.tf.vars });
      await own.tf.writeVars(t.tf.vars);
    }
  } else if (t?.tf.persistent) {
    // nothing for Terraform to apply; the variables are still the ones the next run starts with
    await t.tf.tf.writeVars(t.tf.vars);
  }
  if (staged) {
    const timeoutS = opts.rolloutTimeoutS ?? 300;
    const record = staged;
    await step(
      `staged rollout of secure generation ${record.target.generation} to ${record.order.length} master(s), one at a time (up to ${timeoutS} s each)`,
      async () => {
        const { parseStatus } = await import('../secrets/status.js');
        const done = await driveRollout(store, cfg.name, 'secure', {
          timeoutS,
          parse: parseStatus,
          log: (l) => log.info(l),
          ...(opts.rolloutPollMs ? { pollMs: opts.rolloutPollMs } : {}),
        });
        log.info(`rollout of secure generation ${done.target.generation}: ${done.state}`);
        await reportPreRolloutSnapshot(ctx, done);
      },
    );
  }
  return secureGeneration;
}

/**
 * Says which etcd snapshot the rollout's first master took before it applied the target
 * (src/agent/presnap.ts), or warns that there is none: a master launched before the
 * snapshot drop-in existed has no etcd endpoint and applies without one (README "rollout").
 * Reads only (one ListObjectsV2 walk of backups/etcd/); a failed listing is a warning.
 */
async function reportPreRolloutSnapshot(ctx: EnvContext, record: RolloutRecord): Promise<void> {
  const first = record.order[0];
  const since = Date.parse((first && record.promotedAt[first]) || record.updatedAt);
  try {
    const { snapshotSince } = await import('../roll/snapshot.js');
    const s = snapshotSince(await (await backupStore(ctx)).list(), since);
    if (s)
      log.info(
        `etcd snapshot ${s.key} was taken before ${first} applied generation ${record.target.generation}`,
      );
    else
      log.warn(
        `no etcd snapshot under backups/etcd/ since ${first} was allowed generation ${record.target.generation}: its agent has no etcd endpoint (a master launched before the snapshot drop-in; roll secure replaces it); take one with etcd-backup now`,
      );
  } catch (e) {
    log.warn(`could not list backups/etcd/ to find the pre-rollout snapshot: ${(e as Error).message}`);
  }
}

/** How many files a layer's publish adds, changes (content or mode) or removes. */
function layerChanges(l: LayerChange): number {
  return l.plan.added.length + l.plan.changed.length + l.plan.modeChanged.length + l.plan.removed.length;
}

/**
 * The instance ids of the environment's running (or starting) masters, in the inventory's
 * order (name, then private IP): the order a staged rollout promotes them in.
 */
async function runningMasters(ctx: EnvContext): Promise<string[]> {
  const { listInstances } = await import('../aws/inventory.js');
  const { instancesForLayer } = await import('../fleet/convergence.js');
  return instancesForLayer(await listInstances(ctx.aws, ctx.cfg.name), 'secure').map((i) => i.instanceId);
}

/**
 * Writes what this run published into the cluster state (issue 13: "`run` updates it"):
 * generations, the working copy's certificates, desired versions. A failure is a warning:
 * the publish it records has happened; the next run records it again.
 */
async function recordRunState(
  ctx: EnvContext,
  generations: Record<string, number>,
  allowDowngrade: boolean,
): Promise<void> {
  const { environmentState } = await import('../state/open.js');
  const { certificateRecords, recordRun } = await import('../state/record-run.js');
  try {
    const certificates = await certificateRecords(secretsDir(ctx.cfg.name));
    const lastBackup = await newestBackup(ctx);
    const state = await environmentState(ctx.aws, ctx.cfg.name, ctx.names);
    const r = await state.update(
      (s) =>
        recordRun(s, {
          generations,
          certificates,
          kubernetesVersion: ctx.cfg.kubernetesVersion,
          etcdVersion: ctx.cfg.etcdVersion,
          ...(lastBackup ? { lastBackup } : {}),
        }),
      { retries: 3, allowDowngrade },
    );
    log.info(`cluster state revision ${r.state.revision}`);
  } catch (e) {
    log.warn(`the cluster state was not updated: ${(e as Error).message}`);
  }
}

/**
 * The newest etcd snapshot under `backups/etcd/` (one ListObjectsV2 walk; the masters'
 * timer writes them, src/backup/), as the cluster state records it; undefined when none.
 */
async function newestBackup(ctx: EnvContext): Promise<{ at: string; key: string } | undefined> {
  const all = await (await backupStore(ctx)).list();
  const last = all.at(-1);
  return last ? { at: new Date(last.takenAtMs).toISOString(), key: last.key } : undefined;
}

export async function converge(ctx: EnvContext, o: RunOptions, secureGeneration: number): Promise<number> {
  if (!o.wait) return 0;
  const timeoutS = Number(o.waitTimeout ?? 300);
  const { store } = await secretStore(ctx);
  const { listInstances } = await import('../aws/inventory.js');
  const { waitForConvergence, formatConvergence } = await import('../fleet/convergence.js');
  log.step(`waiting for the masters to apply secure generation ${secureGeneration} (up to ${timeoutS} s)`);
  const r = await waitForConvergence({
    store,
    instances: await listInstances(ctx.aws, ctx.cfg.name),
    layer: 'secure',
    generation: secureGeneration,
    timeoutS,
  });
  if (r.converged < r.total) throw new TimeoutError(formatConvergence(r));
  log.step(formatConvergence(r));
  return 0;
}

/**
 * `run --apply FILE`: applies exactly the change set `run --plan --out FILE` saved, or refuses
 * it (README "run", "Saved plans"). In order:
 * 1. decrypt and authenticate FILE (one KMS Decrypt with the saved plan's encryption context);
 * 2. read what it was computed from (reads only): toolkit version, environment file,
 *    bootstrap, the Terraform state object's VersionId, every layer's index, the working
 *    copy, the agent bundle; any difference is a conflict, nothing applied;
 * 3. evaluate the policy again over the saved Terraform plan (a waiver may have expired),
 *    print the change set and the report; a refusal is exit 6;
 * 4. the confirmation `run` asks for;
 * 5. {@link applyRun} with the saved PKI writes, rendered files, layer plans (against the
 *    indexes just read, with conditional writes) and the saved Terraform plan file
 *    (`terraform apply FILE`: Terraform itself refuses it if the state moved meanwhile).
 * @param bytes FILE's content, read before any AWS request
 * @returns 0 (applied, or nothing to apply)
 * @throws IntegrityError (4) for a changed, damaged or foreign FILE; ConflictError (3) for a
 *   stale one (every reason listed); PolicyError (6); UserError (2) without a TTY and --yes;
 *   AbortError (130) when declined; what {@link applyRun} throws
 */
export async function applySavedPlan(
  o: RunOptions,
  context: CommandContext,
  file: string,
  bytes: Buffer,
): Promise<number> {
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const { cfg } = ctx;
    // as run: refused while an upgrade is unfinished
    await readGuardedState(ctx, o, { refuseUpgrade: true });
    const saved = await import('../changeset/saved.js');
    const { staleReasons } = await import('../changeset/saved-format.js');
    const plan = await step(`open the saved plan ${displayPath(file)}`, async () => {
      const p = await saved.openSavedPlanFile(ctx, file, bytes);
      log.info(`made ${p.createdAt} by kube-platform ${p.inputs.toolkitVersion}`);
      return p;
    });
    const now = await step('check that nothing the plan was computed from has changed', async () => {
      const { secretStore } = await import('../context/environment.js');
      const key = plan.inputs.kmsKeyArn;
      const { store } = await secretStore(ctx, key);
      return saved.currentInputs(ctx, store);
    });
    const stale = staleReasons(plan.inputs, now.inputs);
    if (stale.length)
      throw new ConflictError(`${displayPath(file)} is stale: ${stale.join('; ')}; nothing was applied`, {
        hint: `make a new one: run -e ${cfg.name} --plan --out ${displayPath(file)}`,
      });
    const { evaluatePolicy } = await import('../policy/index.js');
    const { assertPolicy, policyInputFor, printPolicyReport } = await import('./policy.js');
    const planJson = plan.changes.terraform?.planJson;
    const policy = evaluatePolicy(
      await policyInputFor(cfg, {
        ...(planJson !== null && planJson !== undefined ? { plan: planJson } : {}),
        account: ctx.identity.account,
        kmsKeyArn: plan.inputs.kmsKeyArn,
      }),
      { waivers: cfg.waivers },
    );
    const view = saved.changeSetOfSaved(plan, now, policy);
    const { formatChangeSet } = await import('../changeset/format.js');
    const { hasChanges } = await import('../changeset/plan.js');
    context.stdout.write(formatChangeSet(view));
    context.stdout.write('\n## policy\n');
    await printPolicyReport(policy, context.stdout);
    assertPolicy(policy);
    if (!hasChanges(view)) {
      log.step(`${cfg.name}: the saved plan has no changes; nothing to apply`);
      return ExitCode.ok;
    }
    await confirmApply(
      o,
      ctx,
      view,
      `run -e ${cfg.name} --plan`,
      `run -e ${cfg.name} --apply ${displayPath(file)} --yes`,
    );
    let cs: ChangeSet;
    const { terraform, ...rest } = view;
    if (terraform) {
      const extracted = (await saved.extractTerraformPlan(plan))!;
      cleanup.push(extracted.dispose);
      const { platformTerraform } = await import('../context/terraform.js');
      const tf = terraform.summary.changes
        ? await step('terraform init', () =>
            platformTerraform(ctx, {
              kmsKeyArn: plan.inputs.kmsKeyArn,
              sshPublicKey: plan.changes.pki.sshPublicKey,
            }),
          )
        : undefined;
      cs = tf
        ? {
            ...rest,
            terraform: { ...terraform, summary: { ...terraform.summary, planFile: extracted.planFile }, tf },
          }
        : rest;
    } else cs = rest;
    const secureGeneration = await applyRun(ctx, cs, {
      allowDowngrade: Boolean(o.allowDowngrade),
      rollout: o.rollout ?? 'staged',
      rolloutTimeoutS: Number(o.rolloutTimeout ?? 300),
    });
    log.step(`${cfg.name}: the saved plan ${displayPath(file)} was applied`);
    return converge(ctx, o, secureGeneration);
  } finally {
    for (const c of cleanup) await c();
    await ctx.close();
  }
}

/**
 * Reads the environment's cluster state (reads only: GetObject and the Decrypt of its data
 * key; nothing on a new environment) and refuses, before anything is planned or applied, a
 * state written by a newer toolkit (unless --allow-downgrade) and, with `refuseUpgrade`, an
 * unfinished upgrade.
 * @throws UserError (exit 2) on a downgrade; ConflictError (exit 3) during an upgrade
 */
async function readGuardedState(
  ctx: Awaited<ReturnType<CommandContext['openEnvironment']>>,
  o: { allowDowngrade?: boolean },
  opts: { refuseUpgrade: boolean },
): Promise<void> {
  const { environmentState } = await import('../state/open.js');
  const { assertNotDowngrade } = await import('../state/store.js');
  const { toolkitVersion } = await import('../version.js');
  const stateStore = await environmentState(ctx.aws, ctx.cfg.name, ctx.names);
  const snapState = (await stateStore.read()).state;
  assertNotDowngrade(snapState, toolkitVersion(), Boolean(o.allowDowngrade), stateStore.where);
  if (opts.refuseUpgrade) (await import('../upgrade/phases.js')).assertNoUpgradeInProgress(snapState.upgrade);
}
