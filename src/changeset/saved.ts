import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { inspectBootstrap, planBootstrap } from '../aws/bootstrap.js';
import { objectVersion } from '../aws/objects.js';
import { agentBundle } from '../context/agent-bundle.js';
import type { EnvContext } from '../context/environment.js';
import { IntegrityError, UserError } from '../errors.js';
import { atomicWrite, readRegularFile } from '../fsutil.js';
import { displayPath, environmentsDir, secretsDir } from '../paths.js';
import type { PolicyReport } from '../policy/index.js';
import { sha256 } from '../secrets/envelope.js';
import { KmsKeyService } from '../secrets/keyring.js';
import { isLayer, isSafePath, LAYERS, type Layer } from '../secrets/layers.js';
import { readLayerDir } from '../secrets/local.js';
import type { PkiChanges } from '../secrets/pki/ensure.js';
import { readIndexForPublish, readSeen } from '../secrets/seen.js';
import type { IndexSnapshot, SecretStore } from '../secrets/store.js';
import type { ChangeSet, ChangeSetView, LayerChange } from './plan.js';
import {
  MAX_SAVED_PLAN_BYTES,
  openSavedPlan,
  SAVED_PLAN_KIND,
  SAVED_PLAN_VERSION,
  type SavedInputs,
  type SavedPlan,
  sealSavedPlan,
} from './saved-format.js';

/**
 * Saved plans (`run --plan --out FILE`, `run --apply FILE`; README "run"): what a change set
 * was computed from, read from AWS and the disk (reads only), the file written and read
 * (format: src/changeset/saved-format.ts), and the change set rebuilt from it for the apply.
 */

/** sha256 of environments/<env>.env as it is now. @throws UserError when it cannot be read */
async function environmentFileDigest(env: string): Promise<string> {
  return sha256(await readRegularFile(path.join(environmentsDir(), `${env}.env`)));
}

/** `path → "sha256 mode"` per layer of the working copy (before any write of the plan). */
async function workingCopyDigests(secrets: string): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const layer of LAYERS) {
    const files = await readLayerDir(secrets, layer);
    if (files.length)
      out[layer] = Object.fromEntries(files.map((f) => [f.path, `${f.sha256} ${f.mode.toString(8)}`]));
  }
  return out;
}

/**
 * The Terraform state object's VersionId, read before the plan (so a state written while the
 * plan ran makes the saved plan stale, never the other way round).
 * @returns null when the object (or its bucket) does not exist
 */
export async function stateVersion(ctx: EnvContext): Promise<string | null> {
  return (await objectVersion(ctx.aws, ctx.names.stateBucket, ctx.names.stateKey)) ?? null;
}

/**
 * Builds the saved plan of a change set `run --plan` computed.
 * @param stateVersionId the state object's VersionId read before the plan ({@link stateVersion})
 * @throws UserError (exit 2) when the change set cannot travel: planned from a working copy
 *   restored from the bucket (restore it first), on an environment without a KMS key or
 *   without a state bucket (the first `run` creates them)
 */
export async function savedPlanOf(
  ctx: EnvContext,
  cs: ChangeSet,
  stateVersionId: string | null,
): Promise<SavedPlan> {
  const env = cs.environment;
  if (cs.restored)
    throw new UserError(
      `--out: secrets/${env}/ is empty and this plan was made from the bucket's layers; a saved plan is made from a working copy`,
      {
        hint: `restore the working copy first (fetch-secrets -e ${env}, or a plain run -e ${env}), then run --plan --out again`,
      },
    );
  const key = cs.bootstrapState.key;
  if (!key || cs.terraform?.emptyState)
    throw new UserError(
      `--out: ${env} does not exist yet (${key ? 'no state bucket' : 'no KMS key'}): a saved plan is encrypted with the environment's key and applies against its Terraform state`,
      { hint: `create it with run -e ${env} first` },
    );
  const t = cs.terraform;
  return {
    kind: SAVED_PLAN_KIND,
    format: SAVED_PLAN_VERSION,
    environment: env,
    account: cs.account,
    createdAt: new Date().toISOString(),
    inputs: {
      toolkitVersion: (await import('../version.js')).toolkitVersion(),
      environmentFile: await environmentFileDigest(env),
      bootstrap: cs.bootstrap,
      kmsKeyArn: key.arn,
      state: { bucket: ctx.names.stateBucket, key: ctx.names.stateKey, versionId: stateVersionId },
      indexes: cs.layers.map((l) => ({
        layer: l.layer,
        generation: l.base?.index.generation ?? 0,
        digest: l.base?.digest ?? null,
      })),
      workingCopy: await workingCopyDigests(secretsDir(env)),
      agent: { key: cs.agent.key, sha256: cs.agent.sha256 },
    },
    changes: {
      pki: {
        writes: cs.pki.writes.map((w) => ({ path: w.path, reason: w.reason, content: w.content })),
        kept: cs.pki.kept,
        modeFixes: cs.pki.modeFixes,
        managed: cs.pki.managed,
        expiring: cs.pki.expiring.map((e) => ({
          path: e.path,
          notAfter: e.notAfter.toISOString(),
          daysLeft: e.daysLeft,
        })),
        outdated: cs.pki.outdated,
        sshPublicKey: cs.pki.sshPublicKey,
        caCertificates: cs.pki.caCertificates,
        now: cs.pki.now.toISOString(),
        warnDays: cs.pki.warnDays,
      },
      rendered: cs.rendered.map((f) => ({ path: f.path, content: f.content, mode: f.mode })),
      layers: cs.layers.map((l) => ({ layer: l.layer, plan: l.plan, diffs: l.diffs, digests: l.digests })),
      agentPublish: cs.agent.publish,
      terraform: t
        ? {
            changes: t.summary.changes,
            add: t.summary.add,
            change: t.summary.change,
            destroy: t.summary.destroy,
            addresses: t.summary.addresses,
            resources: t.resources,
            planFile: (await readFile(t.summary.planFile)).toString('base64'),
            planJson: t.summary.json ?? null,
          }
        : null,
    },
  };
}

/** The KMS key service a saved plan of `ctx`'s environment is sealed and opened with. */
export async function savedPlanKeys(ctx: EnvContext, kmsKeyId = ctx.names.kmsAlias): Promise<KmsKeyService> {
  return new KmsKeyService(await ctx.aws.kms(), kmsKeyId);
}

/**
 * Checks, before any AWS request, that FILE can be written: its directory exists and is a
 * directory. @throws UserError (exit 2) naming the file
 */
export async function assertWritableTarget(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  const st = await stat(dir).catch(() => undefined);
  if (!st?.isDirectory())
    throw new UserError(`--out ${displayPath(file)}: the directory ${displayPath(dir)} does not exist`);
  const f = await stat(file).catch(() => undefined);
  if (f && !f.isFile()) throw new UserError(`--out ${displayPath(file)}: exists and is not a regular file`);
}

/**
 * Encrypts and writes a saved plan to FILE (mode 0600, atomically: a temp file renamed).
 * One KMS GenerateDataKey under the environment's key.
 */
export async function writeSavedPlan(file: string, plan: SavedPlan, keys: KmsKeyService): Promise<number> {
  const bytes = await sealSavedPlan(plan, keys);
  await atomicWrite(path.resolve(file), bytes, 0o600);
  return bytes.length;
}

/**
 * Reads FILE's bytes, before any AWS request.
 * @throws UserError (exit 2) when it is missing, unreadable, not a regular file or too large
 */
export async function readSavedPlanBytes(file: string): Promise<Buffer> {
  const st = await stat(file).catch((e: NodeJS.ErrnoException) => {
    throw new UserError(`--apply ${displayPath(file)}: cannot read it (${e.code ?? e.message})`);
  });
  if (!st.isFile()) throw new UserError(`--apply ${displayPath(file)}: not a regular file`);
  if (st.size > MAX_SAVED_PLAN_BYTES)
    throw new UserError(`--apply ${displayPath(file)}: ${st.size} bytes, larger than any saved plan`);
  try {
    return await readRegularFile(file);
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(
      `--apply ${displayPath(file)}: cannot read it (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
    );
  }
}

/**
 * Decrypts and validates a saved plan of `ctx`'s environment (one KMS Decrypt).
 * @throws IntegrityError (exit 4) naming the file for a changed, damaged or foreign one
 */
export async function openSavedPlanFile(ctx: EnvContext, file: string, bytes: Buffer): Promise<SavedPlan> {
  const plan = await openSavedPlan(bytes, ctx.cfg.name, await savedPlanKeys(ctx), displayPath(file));
  // authenticated, so written by someone who could use this environment's key; still, every
  // path it names must be a safe layer path before the apply writes it
  const bad = [
    ...plan.changes.pki.writes.map((w) => w.path),
    ...plan.changes.rendered.map((f) => f.path),
    ...plan.changes.layers.flatMap((l) => [l.layer, ...Object.keys(l.digests).map((p) => `${l.layer}/${p}`)]),
  ].filter((p) => {
    const [layer, ...rest] = p.split('/');
    return !layer || !isLayer(layer) || (rest.length > 0 && !isSafePath(rest.join('/')));
  });
  if (bad.length)
    throw new IntegrityError(
      `${displayPath(file)}: the saved plan names unsafe paths (${bad.slice(0, 3).join(', ')})`,
    );
  if (plan.account !== ctx.identity.account)
    throw new IntegrityError(
      `${displayPath(file)}: a saved plan for account ${plan.account}, these credentials are of account ${ctx.identity.account}`,
    );
  return plan;
}

/** What the apply publishes against: the indexes read now, verified equal to the saved ones. */
export interface CurrentInputs {
  inputs: SavedInputs;
  bases: Map<Layer, IndexSnapshot | null>;
  bootstrapState: Awaited<ReturnType<typeof inspectBootstrap>>;
}

/**
 * Reads, with read requests only, the same inputs a saved plan records: toolkit version,
 * environment file, bootstrap, the state object's VersionId, every layer's index (verified,
 * checked against the generations the working copy has seen), the working copy and the
 * agent bundle. Compare with {@link staleReasons} (saved-format.ts).
 */
export async function currentInputs(ctx: EnvContext, store: SecretStore | undefined): Promise<CurrentInputs> {
  const env = ctx.cfg.name;
  const bootstrapState = await inspectBootstrap(ctx.aws, ctx.names);
  const secrets = secretsDir(env);
  const seen = await readSeen(secrets);
  const bases = new Map<Layer, IndexSnapshot | null>();
  for (const layer of LAYERS) bases.set(layer, store ? await readIndexForPublish(store, layer, seen) : null);
  const bundle = await agentBundle();
  return {
    bases,
    bootstrapState,
    inputs: {
      toolkitVersion: (await import('../version.js')).toolkitVersion(),
      environmentFile: await environmentFileDigest(env),
      bootstrap: planBootstrap(bootstrapState, ctx.names),
      kmsKeyArn: bootstrapState.key?.arn ?? '',
      state: { bucket: ctx.names.stateBucket, key: ctx.names.stateKey, versionId: await stateVersion(ctx) },
      indexes: [...bases].flatMap(([layer, b]) =>
        b ? [{ layer, generation: b.index.generation, digest: b.digest }] : [],
      ),
      workingCopy: await workingCopyDigests(secrets),
      agent: { key: bundle.key, sha256: bundle.sha256 },
    },
  };
}

/**
 * The change set of a saved plan, for the confirmation, the printout and {@link applyRun}
 * (src/commands/run.ts): layers against the indexes read now (equal to the saved ones, as
 * checked before), PKI writes and rendered files as saved, the Terraform resources as
 * saved (the plan file itself is attached by the caller after the confirmation, see
 * {@link extractTerraformPlan}).
 * @param policy the policy evaluated again at apply time (a waiver may have expired since)
 */
export function changeSetOfSaved(saved: SavedPlan, now: CurrentInputs, policy: PolicyReport): ChangeSetView {
  const c = saved.changes;
  const layers: LayerChange[] = c.layers.map((l) => {
    const base = now.bases.get(l.layer as Layer) ?? null;
    return {
      layer: l.layer as Layer,
      generation: base?.index.generation ?? 0,
      plan: l.plan,
      diffs: l.diffs,
      base,
      digests: l.digests,
    };
  });
  return {
    environment: saved.environment,
    account: saved.account,
    bootstrap: saved.inputs.bootstrap,
    bootstrapState: now.bootstrapState,
    pki: {
      ...c.pki,
      root: secretsDir(saved.environment),
      now: new Date(c.pki.now),
      expiring: c.pki.expiring.map((e) => ({ ...e, notAfter: new Date(e.notAfter) })),
      caCertificates: c.pki.caCertificates as PkiChanges['caCertificates'],
    },
    rendered: c.rendered,
    layers,
    agent: { ...saved.inputs.agent, publish: c.agentPublish },
    ...(c.terraform
      ? {
          terraform: {
            summary: {
              changes: c.terraform.changes,
              add: c.terraform.add,
              change: c.terraform.change,
              destroy: c.terraform.destroy,
              addresses: c.terraform.addresses,
              planFile: '',
              ...(c.terraform.planJson === null ? {} : { json: c.terraform.planJson }),
            },
            resources: c.terraform.resources,
            emptyState: false,
          },
        }
      : {}),
    policy,
  };
}

/**
 * Writes the saved Terraform plan file into a private temporary directory (0700, file 0600)
 * for `terraform apply`.
 * @returns its path and a function that removes the directory
 */
export async function extractTerraformPlan(
  saved: SavedPlan,
): Promise<{ planFile: string; dispose: () => Promise<void> } | undefined> {
  const t = saved.changes.terraform;
  if (!t) return undefined;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kp-saved-plan-'));
  const planFile = path.join(dir, 'platform.tfplan');
  await writeFile(planFile, Buffer.from(t.planFile, 'base64'), { mode: 0o600 });
  return { planFile, dispose: () => rm(dir, { recursive: true, force: true }) };
}
