import { gunzipSync, gzipSync } from 'node:zlib';
import { z } from 'zod';
import { ExitCode, IntegrityError, UserError } from '../errors.js';
import { type Binding, open, parseEnvelope, seal } from '../secrets/envelope.js';
import type { KeyService } from '../secrets/keyring.js';

/**
 * The file `run --plan --out FILE` writes and `run --apply FILE` reads: a saved change set
 * (README "run", "Saved plans"). Pure: bytes in, bytes out; KMS only through a KeyService.
 *
 * It holds keys (new PKI writes) and a Terraform plan file (which can hold secrets), so the
 * whole payload is envelope-encrypted (src/secrets/envelope.ts) under a data key from the
 * environment's KMS key with its own encryption context {purpose: "saved-plan",
 * environment} — a node role, whose key policy condition names a layer, can never decrypt
 * it, and a saved plan of one environment does not open as another's.
 *
 * Wire format (version 1):
 *
 *   magic "KPSP" (4) | version u8 (1) | envelope (src/secrets/envelope.ts: "KPE1" | edkLen |
 *   edk | iv | ciphertext | tag)
 *
 * The envelope's additional authenticated data binds environment, layer "saved-plan" and the
 * path "saved-plan/v<version>", so the version byte is authenticated too. The plaintext is
 * gzip (RFC 1952) of one JSON document ({@link SavedPlan}, `format: 1`), with the Terraform
 * plan file as base64. A newer format is refused with a UserError (made by a newer toolkit);
 * anything that fails authentication, decompression or the schema is an IntegrityError.
 */

export const SAVED_PLAN_MAGIC = Buffer.from('KPSP');
/** The version this toolkit writes and the only one it reads. */
export const SAVED_PLAN_VERSION = 1;
export const SAVED_PLAN_KIND = 'kube-platform/saved-plan';
/** Largest saved plan accepted (bytes on disk; a Terraform plan of this module is ~100 KB). */
export const MAX_SAVED_PLAN_BYTES = 64 * 1024 * 1024;

/** KMS encryption context of a saved plan's data key. */
export function savedPlanContext(environment: string): Record<string, string> {
  return { purpose: 'saved-plan', environment };
}

function binding(environment: string, version: number): Binding {
  return { environment, layer: 'saved-plan', path: `saved-plan/v${version}` };
}

const publishPlan = z.object({
  added: z.array(z.string()),
  changed: z.array(z.string()),
  modeChanged: z.array(z.string()),
  removed: z.array(z.string()),
  unchanged: z.array(z.string()),
});

const savedPlanSchema = z.object({
  kind: z.literal(SAVED_PLAN_KIND),
  format: z.literal(SAVED_PLAN_VERSION),
  environment: z.string(),
  account: z.string(),
  /** ISO time the plan was made */
  createdAt: z.string(),
  /** what the plan was computed from; `run --apply` refuses when any of it moved */
  inputs: z.object({
    toolkitVersion: z.string(),
    /** sha256 of environments/<env>.env as read */
    environmentFile: z.string(),
    /** bootstrap actions the plan listed (the apply's inspection must list the same) */
    bootstrap: z.array(z.string()),
    kmsKeyArn: z.string(),
    /** the Terraform state object's S3 VersionId; null: it did not exist */
    state: z.object({ bucket: z.string(), key: z.string(), versionId: z.string().nullable() }),
    /** per layer the index the plan read: generation and sha256 of its plaintext (null: none) */
    indexes: z.array(
      z.object({ layer: z.string(), generation: z.number().int(), digest: z.string().nullable() }),
    ),
    /** per layer, `path → "sha256 mode"` of the working copy before the plan's own writes */
    workingCopy: z.record(z.string(), z.record(z.string(), z.string())),
    agent: z.object({ key: z.string(), sha256: z.string() }),
  }),
  /** what the apply does */
  changes: z.object({
    pki: z.object({
      writes: z.array(
        z.object({ path: z.string(), reason: z.enum(['missing', 'changed']), content: z.string() }),
      ),
      kept: z.array(z.string()),
      modeFixes: z.array(z.object({ path: z.string(), mode: z.number().int() })),
      managed: z.array(z.string()),
      expiring: z.array(z.object({ path: z.string(), notAfter: z.string(), daysLeft: z.number() })),
      outdated: z.array(z.object({ path: z.string(), differences: z.array(z.string()) })),
      sshPublicKey: z.string(),
      /** each CA's certificate (PEM, public) as after the apply */
      caCertificates: z.record(z.string(), z.string()),
      now: z.string(),
      warnDays: z.number(),
    }),
    rendered: z.array(z.object({ path: z.string(), content: z.string(), mode: z.number().int() })),
    layers: z.array(
      z.object({
        layer: z.string(),
        plan: publishPlan,
        diffs: z.record(z.string(), z.string()),
        /** sha256 of each file the layer will hold, by path (the publish's input) */
        digests: z.record(z.string(), z.string()),
      }),
    ),
    agentPublish: z.boolean(),
    terraform: z
      .object({
        changes: z.boolean(),
        add: z.number().int(),
        change: z.number().int(),
        destroy: z.number().int(),
        addresses: z.array(z.string()),
        resources: z.array(z.object({ address: z.string(), actions: z.array(z.string()) })),
        /** the saved Terraform plan file (`terraform plan -out`), base64 */
        planFile: z.string(),
        /** `terraform show -json` of it (the policy's input); null when it had no changes */
        planJson: z.unknown(),
      })
      .nullable(),
  }),
});

/** The decoded content of a saved plan. */
export type SavedPlan = z.infer<typeof savedPlanSchema>;

/**
 * Encodes and encrypts a saved plan (one KMS GenerateDataKey).
 * @returns the file bytes in the wire format above
 */
export async function sealSavedPlan(plan: SavedPlan, keys: KeyService): Promise<Buffer> {
  const payload = gzipSync(Buffer.from(JSON.stringify(plan), 'utf8'));
  const key = await keys.generateDataKey(savedPlanContext(plan.environment));
  try {
    const body = seal(payload, key, binding(plan.environment, SAVED_PLAN_VERSION));
    return Buffer.concat([SAVED_PLAN_MAGIC, Buffer.from([SAVED_PLAN_VERSION]), body]);
  } finally {
    key.plaintext.fill(0);
  }
}

/**
 * Decrypts, authenticates and validates a saved plan of `environment` (one KMS Decrypt).
 * @param what the file's name for messages (never its content)
 * @throws IntegrityError (exit 4) when the bytes are not a saved plan, were changed, or belong
 *   to another environment (KMS refuses the data key or authentication fails), or the
 *   decrypted document is not a saved plan; UserError (exit 2) for a newer format version
 */
export async function openSavedPlan(
  data: Buffer,
  environment: string,
  keys: KeyService,
  what: string,
): Promise<SavedPlan> {
  if (data.length < 5 || !data.subarray(0, 4).equals(SAVED_PLAN_MAGIC))
    throw new IntegrityError(`${what}: not a kube-platform saved plan (run --plan --out writes one)`);
  const version = data[4]!;
  if (version > SAVED_PLAN_VERSION)
    throw new UserError(
      `${what}: saved plan format ${version}, this toolkit reads format ${SAVED_PLAN_VERSION}: it was made by a newer toolkit`,
    );
  const damaged = `${what}: the saved plan does not open for environment ${environment}: it was changed, is damaged, or was made for another environment; nothing was applied`;
  const env = parseEnvelope(data.subarray(5), what);
  let plaintextKey: Buffer;
  try {
    plaintextKey = await keys.decryptDataKey(Buffer.from(env.encryptedKey), savedPlanContext(environment));
  } catch (e) {
    // KMS refuses a damaged data key or one of another context: IntegrityError (invalid
    // ciphertext) or DecryptDeniedError (a local AWS answers AccessDeniedException), both exit
    // 4 — the file's integrity; any other failure (network, throttling) passes through
    if ((e as { exitCode?: number }).exitCode === ExitCode.integrity)
      throw new IntegrityError(damaged, { cause: e });
    throw e;
  }
  let payload: Buffer;
  try {
    payload = open(env, plaintextKey, binding(environment, version));
  } catch (e) {
    throw new IntegrityError(damaged, { cause: e });
  } finally {
    plaintextKey.fill(0);
  }
  let json: unknown;
  try {
    json = JSON.parse(gunzipSync(payload, { maxOutputLength: 8 * MAX_SAVED_PLAN_BYTES }).toString('utf8'));
  } catch (e) {
    throw new IntegrityError(`${what}: the saved plan's content is not gzip'd JSON`, { cause: e });
  }
  const parsed = savedPlanSchema.safeParse(json);
  if (!parsed.success)
    throw new IntegrityError(
      `${what}: not a saved plan document: ${parsed.error.issues[0]?.path.join('.') ?? ''}: ${parsed.error.issues[0]?.message ?? ''}`,
    );
  if (parsed.data.environment !== environment)
    throw new IntegrityError(`${what}: a saved plan of ${parsed.data.environment}, not of ${environment}`);
  return parsed.data;
}

/** What `run --apply` compares: the saved inputs against the same things read now. */
export type SavedInputs = SavedPlan['inputs'];

/**
 * Pure: every input of the saved plan that differs from what is there now, as one line each
 * (no content, only names, digests' presence, versions and generations).
 * @returns [] when the plan can be applied
 */
export function staleReasons(saved: SavedInputs, now: SavedInputs): string[] {
  const out: string[] = [];
  if (saved.toolkitVersion !== now.toolkitVersion)
    out.push(`the toolkit is ${now.toolkitVersion}, the plan was made by ${saved.toolkitVersion}`);
  if (saved.environmentFile !== now.environmentFile) out.push('the environment file changed since the plan');
  if (saved.kmsKeyArn !== now.kmsKeyArn) out.push('the environment KMS key is another one');
  if (JSON.stringify(saved.bootstrap) !== JSON.stringify(now.bootstrap))
    out.push(
      `the bootstrap changed: the plan listed [${saved.bootstrap.join('; ') || 'in place'}], now [${now.bootstrap.join('; ') || 'in place'}]`,
    );
  if (saved.state.versionId !== now.state.versionId)
    out.push(
      `the Terraform state s3://${now.state.bucket}/${now.state.key} changed (version ${saved.state.versionId ?? 'none'} -> ${now.state.versionId ?? 'none'})`,
    );
  const nowIdx = new Map(now.indexes.map((i) => [i.layer, i]));
  for (const s of saved.indexes) {
    // a layer absent now is at generation 0 with no index, as a never-published one is saved
    const n = nowIdx.get(s.layer) ?? { generation: 0, digest: null };
    if (n.generation !== s.generation || n.digest !== s.digest)
      out.push(
        `layer ${s.layer}: the bucket's index is at generation ${n.generation}${n.generation === s.generation ? ' (rewritten)' : ''}, the plan was computed against generation ${s.generation}`,
      );
  }
  for (const n of now.indexes)
    if (!saved.indexes.some((s) => s.layer === n.layer))
      out.push(`layer ${n.layer}: published since the plan (generation ${n.generation})`);
  const layers = new Set([...Object.keys(saved.workingCopy), ...Object.keys(now.workingCopy)]);
  for (const layer of [...layers].sort()) {
    const a = saved.workingCopy[layer] ?? {};
    const b = now.workingCopy[layer] ?? {};
    const changed = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((p) => a[p] !== b[p]).sort();
    if (changed.length)
      out.push(
        `the working copy's ${layer} layer changed since the plan: ${changed.slice(0, 5).join(', ')}${changed.length > 5 ? ` and ${changed.length - 5} more` : ''}`,
      );
  }
  if (saved.agent.sha256 !== now.agent.sha256)
    out.push(
      `the manifest-sync agent bundle is another build (${now.agent.key}, the plan has ${saved.agent.key})`,
    );
  return out;
}
