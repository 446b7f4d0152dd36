import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { createPatch } from 'diff';
import { type BootstrapState, inspectBootstrap, planBootstrap } from '../aws/bootstrap.js';
import { agentBundle } from '../context/agent-bundle.js';
import type { EnvContext } from '../context/environment.js';
import {
  guessedPreview,
  type PlatformTerraform,
  platformTerraform,
  platformVars,
} from '../context/terraform.js';
import { log } from '../log.js';
import type { RenderedFile } from '../manifests/index.js';
import { manifestsTemplateDir, secretsDir } from '../paths.js';
import type { PolicyReport } from '../policy/index.js';
import { sha256 } from '../secrets/envelope.js';
import { type PublishPlan, planPublish } from '../secrets/index-format.js';
import { LAYERS, type Layer } from '../secrets/layers.js';
import { readLayerDir } from '../secrets/local.js';
import type { PkiChanges } from '../secrets/pki/index.js';
import type { IndexSnapshot, LocalFile, SecretStore } from '../secrets/store.js';
import type { PlanSummary } from '../terraform/plan.js';
import { disposeRestore, type RestoredCopy, restoreForPlan } from './restore.js';
import { isSecretFile } from './secret-paths.js';

/**
 * The change set of `run` (README "run"): everything one apply would do, computed with
 * read requests only and without writing any file under secrets/ or the Terraform
 * directories. New keys and certificates exist only in memory (in `pki`), and are written
 * by the apply; they are never printed or serialised.
 */
export interface ChangeSet {
  environment: string;
  account: string;
  /** bootstrap actions; [] = in place */
  bootstrap: string[];
  bootstrapState: BootstrapState;
  pki: PkiChanges;
  rendered: RenderedFile[];
  layers: LayerChange[];
  agent: { key: string; sha256: string; publish: boolean };
  /** undefined with --skip-terraform */
  terraform?: {
    summary: PlanSummary;
    /** resources with an action other than no-op/read */
    resources: { address: string; actions: string[] }[];
    emptyState: boolean;
    tf: PlatformTerraform;
  };
  policy: PolicyReport;
  /**
   * set when secrets/<env>/ was empty and the plan read the bucket's layers instead (a
   * temporary copy; the apply writes it into secrets/<env>/ first; removed by disposeRestore)
   */
  restored?: RestoredCopy;
}

/**
 * A change set without its live Terraform working directory: what the printout, the
 * confirmation and a saved plan need (a saved plan's Terraform is attached after the
 * confirmation).
 */
export type ChangeSetView = Omit<ChangeSet, 'terraform'> & {
  terraform?: Omit<NonNullable<ChangeSet['terraform']>, 'tf'>;
};

/** One layer's publish against the bucket's current index. */
export interface LayerChange {
  layer: Layer;
  /** generation now current (0: never published) */
  generation: number;
  plan: PublishPlan;
  /** unified diffs of changed/added non-secret files, by path; keys and credentials are absent */
  diffs: Record<string, string>;
  /** the index the plan was computed against (null: none); the apply publishes against it */
  base: IndexSnapshot | null;
  /** sha256 of each local file the plan was computed from, to detect a change before the apply */
  digests: Record<string, string>;
}

/** A KMS key ARN of the right shape for planning an environment whose key does not exist yet. */
export function placeholderKeyArn(region: string, account: string): string {
  return `arn:aws:kms:${region}:${account}:key/00000000-0000-0000-0000-000000000000`;
}

/**
 * The layer files as they will be after the apply, in memory: what is in secrets/<env>/,
 * overlaid with the PKI's writes and mode fixes and with the rendered files.
 */
export async function desiredLayerFiles(
  secrets: string,
  pki: PkiChanges,
  rendered: RenderedFile[],
): Promise<Map<Layer, LocalFile[]>> {
  const out = new Map<Layer, LocalFile[]>();
  const overlay = new Map<string, { content: Buffer; mode: number }>();
  for (const w of pki.writes) overlay.set(w.path, { content: Buffer.from(w.content, 'utf8'), mode: 0o600 });
  for (const f of rendered) overlay.set(f.path, { content: Buffer.from(f.content, 'utf8'), mode: f.mode });
  const modeFix = new Set(pki.modeFixes.map((m) => m.path));
  for (const layer of LAYERS) {
    const byPath = new Map<string, LocalFile>();
    for (const f of await readLayerDir(secrets, layer)) {
      byPath.set(f.path, modeFix.has(`${layer}/${f.path}`) ? { ...f, mode: 0o600 } : f);
    }
    for (const [full, o] of overlay) {
      if (!full.startsWith(`${layer}/`)) continue;
      const rel = full.slice(layer.length + 1);
      byPath.set(rel, {
        path: rel,
        content: o.content,
        sha256: sha256(o.content),
        size: o.content.length,
        mode: o.mode,
      });
    }
    out.set(
      layer,
      [...byPath.values()].sort((a, b) => a.path.localeCompare(b.path)),
    );
  }
  return out;
}

export interface PlanOptions {
  skipTerraform?: boolean;
  /**
   * a Terraform plan the caller started with guessed variables ({@link startGuessedPlan});
   * planRun uses it when the real inputs give the same variables, otherwise lets it end
   * unused, and in either case disposes of it
   */
  early?: EarlyPlan;
}

/**
 * Computes the change set: reads only (KMS DescribeKey/Decrypt, S3 Head/Get/List, EC2
 * Describe*, and Terraform's refresh), writes nothing under secrets/, platform/terraform or
 * the data directory (the Terraform plan runs with -lock=false over temporary files; on an
 * environment without a state bucket, over an empty local state in a temporary copy).
 * A working copy that is empty while the bucket holds layers is planned from those layers,
 * fetched into a temporary copy (`restored`, see src/changeset/restore.ts); one that has
 * files but has not seen the bucket's generations is a conflict.
 * @throws PolicyError never (the caller decides); UserError/IntegrityError from the inputs;
 *   ConflictError (3) when the working copy is behind the bucket
 */
export async function planRun(ctx: EnvContext, o: PlanOptions = {}): Promise<ChangeSet> {
  try {
    return await planChangeSet(ctx, o);
  } catch (e) {
    await discardEarlyPlan(o.early);
    throw e;
  }
}

async function planChangeSet(ctx: EnvContext, o: PlanOptions): Promise<ChangeSet> {
  const { cfg, names } = ctx;
  const secrets = secretsDir(cfg.name);
  const bootstrapState = await inspectBootstrap(ctx.aws, names);
  const bootstrap = planBootstrap(bootstrapState, names);
  const kmsKeyArn = bootstrapState.key?.arn ?? placeholderKeyArn(cfg.region, ctx.identity.account);
  const secretsBucket = bootstrapState.buckets.find((b) => b.role === 'secrets')!;
  const canRead = secretsBucket.exists && bootstrapState.key !== undefined;
  const store = canRead
    ? (await import('../context/environment.js').then((m) => m.secretStore(ctx, kmsKeyArn))).store
    : undefined;
  const { readIndexForPublish, readSeen } = await import('../secrets/seen.js');
  const seen = await readSeen(secrets);
  // the indexes are read at once; the first error, in layer order, is the one reported
  const reads = await Promise.allSettled(
    LAYERS.map((layer) => (store ? readIndexForPublish(store, layer, seen) : Promise.resolve(null))),
  );
  const failed = reads.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  const bases = new Map<Layer, IndexSnapshot | null>(
    LAYERS.map((layer, i) => [layer, (reads[i] as PromiseFulfilledResult<IndexSnapshot | null>).value]),
  );
  // a fresh working copy is planned from the bucket's layers (never a new PKI over a live
  // cluster); one with files but behind the bucket is a conflict
  const restored = store ? await restoreForPlan(store, secrets, cfg.name, bases, seen) : undefined;
  try {
    return await planFrom(ctx, o, { bootstrapState, bootstrap, kmsKeyArn, store, bases, restored });
  } catch (e) {
    await disposeRestore(restored);
    throw e;
  }
}

/** What {@link planFrom} plans from: the bootstrap inspection, the layers' indexes, a restored copy. */
interface PlanInputs {
  bootstrapState: BootstrapState;
  bootstrap: string[];
  kmsKeyArn: string;
  store: SecretStore | undefined;
  bases: Map<Layer, IndexSnapshot | null>;
  restored: RestoredCopy | undefined;
}

async function planFrom(ctx: EnvContext, o: PlanOptions, p: PlanInputs): Promise<ChangeSet> {
  const { cfg } = ctx;
  const { bootstrapState, kmsKeyArn, restored } = p;
  const root = restored?.root ?? secretsDir(cfg.name);
  const emptyState = !bootstrapState.buckets.find((b) => b.role === 'state')!.exists;
  // Terraform's plan, most of a no-op plan's time and a process of its own, starts first,
  // with the SSH public key of the working copy, and runs while the PKI plan, the manifests
  // and the layer diffs are computed. It is used when the PKI plan settles on the same key
  // (on every environment that was built); otherwise it is discarded and Terraform plans
  // again with the PKI plan's key. Its failure is reported where it was before: after the
  // steps that come first, whose errors come first.
  const localPub = o.skipTerraform
    ? undefined
    : await readFile(path.join(root, 'common', 'ssh', `${cfg.name}.pub`), 'utf8').catch(() => undefined);
  // the caller's plan, started with the variables last applied, when it could start one;
  // otherwise one with the real bootstrap inputs and the working copy's SSH key
  let early = o.early && (await o.early.tf) ? o.early : undefined;
  if (!early && o.early) await discardEarlyPlan(o.early);
  if (!early && localPub !== undefined) {
    early = planEarly(
      platformTerraform(ctx, { kmsKeyArn, sshPublicKey: localPub, preview: true, emptyState }),
    );
    // the PKI plan and rendering are CPU work on this event loop: Terraform's set-up (version,
    // init check) goes first, so that its plan is not kept waiting behind them
    await early.begun;
  }
  try {
    return await planWithTerraform(ctx, o, p, root, emptyState, early);
  } catch (e) {
    await discardEarlyPlan(early);
    throw e;
  }
}

/** A plan of the platform Terraform (`terraform plan -lock=false` into temporary files). */
interface TerraformRun {
  tf: PlatformTerraform;
  summary: PlanSummary;
}

/**
 * A Terraform plan started before the rest of the change set, Terraform's own process
 * running while the PKI plan, the manifests and the layer diffs are computed.
 */
export interface EarlyPlan {
  /** the preview Terraform it plans with; undefined when none could be set up this way */
  tf: Promise<PlatformTerraform | undefined>;
  /** its plan (undefined with `tf`); rejects with the plan's error */
  run: Promise<TerraformRun | undefined>;
  /** settles once terraform is started, or it is known that it will not be; never rejects */
  begun: Promise<void>;
}

/**
 * Plans with a preview Terraform as soon as it is set up. json: false — without changes
 * `show -json` (seconds: it loads every provider schema) is skipped; Terraform then applies
 * nothing, so its rules have nothing to refuse and are reported as not evaluated.
 */
function planEarly(preview: Promise<PlatformTerraform | undefined>): EarlyPlan {
  let planning = () => {};
  const started = new Promise<void>((resolve) => {
    planning = resolve;
  });
  const run = preview.then(async (tf) => {
    if (!tf) return undefined;
    try {
      const summary = await tf.tf.plan(tf.vars, tf.planFile, {
        lock: false,
        varFile: tf.varFile,
        json: false,
        onSpawn: planning,
      });
      return { tf, summary };
    } catch (e) {
      await tf.dispose();
      throw e;
    }
  });
  run.catch(() => {}); // awaited, or discarded, by planRun
  const noop = () => {};
  return {
    tf: preview.catch(() => undefined),
    run,
    begun: Promise.race([started, run.then(noop, noop)]),
  };
}

/**
 * Starts `terraform plan` (read-only: -lock=false, temporary variables and plan files) in
 * the environment's own initialised data directory with the variables last applied, the
 * environment file as it is now and the working copy's SSH key ({@link guessedPreview}),
 * before the bootstrap inspection, the layers' indexes and the node image are read: on an
 * unchanged environment its plan is the one {@link planRun} would start a few hundred
 * milliseconds later. Hand it to planRun (options.early), or to {@link discardEarlyPlan}.
 */
export function startGuessedPlan(ctx: EnvContext): EarlyPlan {
  return planEarly(guessedPreview(ctx));
}

/**
 * Waits for a plan that will not be used to end, then removes its temporary files; never
 * throws. It is not stopped: a `terraform plan -lock=false` sent SIGTERM while it refreshes
 * writes the state object (seen in moto's request recorder: a PutObject of the state), and
 * a preview writes nothing.
 */
export async function discardEarlyPlan(early: EarlyPlan | undefined): Promise<void> {
  const r = await early?.run.catch(() => undefined);
  await r?.tf.dispose();
}

/**
 * Plans the platform Terraform for a preview, after the early plan could not be used.
 * @throws what platformTerraform and the plan throw, with the temporary files removed
 */
async function terraformPlan(
  ctx: EnvContext,
  o: { kmsKeyArn: string; sshPublicKey: string; emptyState: boolean; vars?: Record<string, unknown> },
): Promise<TerraformRun> {
  const run = await planEarly(platformTerraform(ctx, { ...o, preview: true })).run;
  return run!;
}

/**
 * The change set once Terraform's plan is under way ({@link planFrom}): PKI plan, manifests,
 * layer diffs, agent, then Terraform's result (the early plan, or a new one when the PKI
 * plan's SSH key differs from the one it started with) and the policy.
 */
async function planWithTerraform(
  ctx: EnvContext,
  o: PlanOptions,
  p: PlanInputs,
  root: string,
  emptyState: boolean,
  early: EarlyPlan | undefined,
): Promise<ChangeSet> {
  const { cfg, names } = ctx;
  const { bootstrapState, bootstrap, kmsKeyArn, store, bases, restored } = p;
  const { planPki, pkiPlanFor } = await import('../secrets/pki/index.js');
  const pki = await planPki(root, pkiPlanFor(cfg));
  // rendered after the PKI: the manifests embed its Kubernetes CA (metrics-server's APIService caBundle)
  const { renderTree, manifestValues } = await import('../manifests/index.js');
  const rendered = await renderTree(
    manifestsTemplateDir(),
    manifestValues(cfg, { kubernetesCaPem: pki.caCertificates.kubernetes }),
  );
  const desired = await desiredLayerFiles(root, pki, rendered);
  const stateBucket = bootstrapState.buckets.find((b) => b.role === 'state')!;
  const layers: LayerChange[] = [];
  for (const layer of LAYERS) {
    const files = desired.get(layer)!;
    const base = bases.get(layer) ?? null;
    if (files.length === 0 && !base) continue;
    const plan = planPublish(files, base?.index);
    const diffs: Record<string, string> = {};
    const byPath = new Map(files.map((f) => [f.path, f]));
    for (const p of [...plan.added, ...plan.changed]) {
      const f = byPath.get(p)!;
      if (isSecretFile(layer, p, f.content)) continue;
      let old = '';
      if (store && base && plan.changed.includes(p)) {
        const prev = await store.fetchFile(layer, p, base.index.files[p]!);
        if (isSecretFile(layer, p, prev)) continue;
        old = prev.toString('utf8');
      }
      diffs[p] = createPatch(`${layer}/${p}`, old, f.content.toString('utf8'), 'bucket', 'local', {
        context: 3,
      });
    }
    layers.push({
      layer,
      generation: base?.index.generation ?? 0,
      plan,
      diffs,
      base,
      digests: Object.fromEntries(files.map((f) => [f.path, f.sha256])),
    });
  }

  const bundle = await agentBundle();
  let agentPublished = false;
  if (stateBucket.exists) {
    const { objectExists } = await import('../aws/objects.js');
    agentPublished = await objectExists(ctx.aws, names.stateBucket, bundle.key);
  }

  // the policy over all but the Terraform plan, evaluated while Terraform plans: the report
  // when the plan has no changes (it then has no JSON), evaluated again with the JSON otherwise
  const { evaluatePolicy } = await import('../policy/index.js');
  const { policyInputFor } = await import('../commands/policy.js');
  const evaluate = async (plan: unknown) =>
    evaluatePolicy(
      await policyInputFor(cfg, {
        ...(plan !== undefined ? { plan } : {}),
        account: ctx.identity.account,
        ...(bootstrapState.key ? { kmsKeyArn } : {}),
        manifests: rendered,
      }),
      { waivers: cfg.waivers },
    );
  const withoutPlan = await evaluate(undefined);

  let terraform: ChangeSet['terraform'];
  let planJson: unknown;
  if (!o.skipTerraform) {
    // the early plan is used when the real inputs give the variables it planned with (its
    // guess, or the working copy's SSH key, may be wrong) over the same kind of state
    const vars = await platformVars(ctx, { kmsKeyArn, sshPublicKey: pki.sshPublicKey, preview: true });
    const planned = await early?.tf;
    let run: TerraformRun;
    if (early && planned?.emptyState === emptyState && isDeepStrictEqual(planned.vars, vars)) {
      run = (await early.run)!;
    } else {
      if (early) log.debug('terraform: the early plan used other variables; planning again');
      await discardEarlyPlan(early);
      run = await terraformPlan(ctx, { kmsKeyArn, sshPublicKey: pki.sshPublicKey, emptyState, vars });
    }
    const { tf, summary } = run;
    try {
      planJson = summary.json;
      const { isChange, planView } = await import('../policy/index.js');
      const resources =
        planJson === undefined
          ? []
          : planView(planJson)
              .resources.filter(isChange)
              .map((r) => ({ address: r.address, actions: r.actions }));
      terraform = { summary, resources, emptyState, tf };
    } catch (e) {
      await tf.dispose();
      throw e;
    }
  }
  const policy = planJson === undefined ? withoutPlan : await evaluate(planJson);
  return {
    environment: cfg.name,
    account: ctx.identity.account,
    bootstrap,
    bootstrapState,
    pki,
    rendered,
    layers,
    agent: { key: bundle.key, sha256: bundle.sha256, publish: !agentPublished },
    ...(terraform ? { terraform } : {}),
    policy,
    ...(restored ? { restored } : {}),
  };
}

/** true when applying the change set would change anything. */
export function hasChanges(cs: ChangeSetView): boolean {
  return (
    cs.bootstrap.length > 0 ||
    cs.pki.writes.length > 0 ||
    cs.pki.modeFixes.length > 0 ||
    cs.layers.some(
      (l) =>
        l.plan.added.length + l.plan.changed.length + l.plan.modeChanged.length + l.plan.removed.length > 0,
    ) ||
    cs.agent.publish ||
    Boolean(cs.terraform?.summary.changes)
  );
}

/**
 * How the apply must be confirmed: "type-back" (the environment name) outside play-* when the
 * Terraform plan destroys or replaces a resource or the secure layer's static pods change;
 * "yes-no" otherwise.
 */
export function confirmationFor(cs: ChangeSetView): 'yes-no' | 'type-back' {
  if (cs.environment.startsWith('play-')) return 'yes-no';
  const destroys = cs.terraform?.resources.some((r) => r.actions.includes('delete')) ?? false;
  const secure = cs.layers.find((l) => l.layer === 'secure');
  // static pods of a live control plane (a published secure generation): every master's
  // kubelet restarts them within seconds; the first publish starts nothing that runs yet
  const staticPods =
    secure !== undefined &&
    secure.generation > 0 &&
    [...secure.plan.added, ...secure.plan.changed, ...secure.plan.removed].some((p) =>
      p.startsWith('manifests/'),
    );
  return destroys || staticPods ? 'type-back' : 'yes-no';
}

/** The change set for machines (`run --plan --json`): no key or file content, diffs of non-secret files only. */
export function changeSetJson(cs: ChangeSetView): unknown {
  return {
    environment: cs.environment,
    account: cs.account,
    changes: hasChanges(cs),
    confirmation: confirmationFor(cs),
    bootstrap: cs.bootstrap,
    pki: {
      write: cs.pki.writes.map((w) => ({ path: w.path, reason: w.reason })),
      modeFixes: cs.pki.modeFixes.map((m) => m.path),
      expiring: cs.pki.expiring.map((e) => ({ path: e.path, daysLeft: e.daysLeft, notAfter: e.notAfter })),
    },
    layers: cs.layers.map((l) => ({
      layer: l.layer,
      generation: l.generation,
      added: l.plan.added,
      changed: l.plan.changed,
      modeChanged: l.plan.modeChanged,
      removed: l.plan.removed,
      unchanged: l.plan.unchanged.length,
      diffs: l.diffs,
    })),
    agent: cs.agent,
    terraform: cs.terraform
      ? {
          changes: cs.terraform.summary.changes,
          add: cs.terraform.summary.add,
          change: cs.terraform.summary.change,
          destroy: cs.terraform.summary.destroy,
          emptyState: cs.terraform.emptyState,
          resources: cs.terraform.resources,
        }
      : null,
    policy: cs.policy,
    workingCopy: cs.restored
      ? { restoredFromBucket: true, generations: cs.restored.generations, files: cs.restored.files }
      : { restoredFromBucket: false },
  };
}
