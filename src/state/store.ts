import type { S3Client } from '@aws-sdk/client-s3';
import semver from 'semver';
import type { AwsClients } from '../aws/clients.js';
import { s3Sdk } from '../aws/sdk.js';
import { ConflictError, UserError } from '../errors.js';
import { log } from '../log.js';
import { type Binding, open, parseEnvelope, seal } from '../secrets/envelope.js';
import { Keyring, type KeyService, KmsKeyService } from '../secrets/keyring.js';
import { type ClusterState, emptyState, parseClusterState } from './schema.js';

/**
 * Where the cluster state lives and how it is written (DESIGN.md §8).
 *
 * Object: `cluster-state/<env>` in the environment's state bucket (beside the Terraform
 * state, which only operators read). Bytes: the envelope format of src/secrets/envelope.ts
 * (AES-256-GCM under a KMS data key, AAD = environment, layer and object path) with its own
 * encryption context `{environment, layer: "state"}`: no node role is granted kms:Decrypt
 * with `layer=state`, so only operators read it. SSE-KMS on top, as every object.
 *
 * Every write is conditional (S3 conditional writes: `If-None-Match: *` for the first one,
 * `If-Match: <ETag read>` after; S3 user guide "Add preconditions to S3 operations with
 * conditional requests"): two writers never lose each other's update, the second gets
 * HTTP 412 → {@link ConflictError} (exit 3).
 */

/** The encryption-context layer of the cluster state. */
export const STATE_LAYER = 'state';

/** The object key of an environment's cluster state in the state bucket. */
export function stateObjectKey(environment: string): string {
  return `cluster-state/${environment}`;
}

/** A read of the document: the state and what a conditional write needs. */
export interface StateSnapshot {
  state: ClusterState;
  /** ETag of the object read; null when there is no document yet (revision 0) */
  etag: string | null;
  /** the KMS-encrypted data key from the object header (reused by the next write) */
  encryptedKey?: Buffer;
}

export interface StateStoreDeps {
  s3: S3Client;
  keys: KeyService;
  bucket: string;
  environment: string;
  /** KMS key id/ARN/alias for SSE-KMS */
  kmsKeyId: string;
  /** the version of this toolkit ({@link toolkitVersion}) */
  toolkitVersion: string;
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/**
 * The downgrade guard (kops#1612: an older kops rewrote a newer cluster's spec and lost
 * it): a toolkit older than the one that last wrote the state must not act on it.
 * Versions compare by semver precedence (semver.org §11).
 * @throws UserError (exit 2) naming both versions, unless `allowDowngrade`
 */
export function assertNotDowngrade(
  state: Pick<ClusterState, 'toolkitVersion' | 'revision'>,
  ours: string,
  allowDowngrade: boolean,
  where: string,
): void {
  if (state.revision === 0) return;
  const theirs = semver.valid(state.toolkitVersion);
  if (!theirs) {
    if (allowDowngrade) return;
    throw new UserError(
      `${where}: last written by toolkit version "${state.toolkitVersion}", which is not a semver version`,
      { hint: 'pass --allow-downgrade to act on it anyway' },
    );
  }
  if (semver.gt(theirs, ours) && !allowDowngrade) {
    throw new UserError(
      `${where}: last written by kube-platform ${theirs}, newer than this toolkit (${ours}); refusing to act on it`,
      {
        hint: `use kube-platform ≥ ${theirs}, or pass --allow-downgrade if you know what the newer version changed`,
      },
    );
  }
}

export class ClusterStateStore {
  /** PutObject requests made (tests) */
  puts = 0;
  readonly #keyring: Keyring;
  constructor(private readonly deps: StateStoreDeps) {
    this.#keyring = new Keyring(deps.keys, deps.environment);
  }

  get key(): string {
    return stateObjectKey(this.deps.environment);
  }

  /** `s3://bucket/cluster-state/<env>`, for messages. */
  get where(): string {
    return `s3://${this.deps.bucket}/${this.key}`;
  }

  #binding(): Binding {
    return { environment: this.deps.environment, layer: STATE_LAYER, path: this.key };
  }

  /**
   * Reads, decrypts and validates the document.
   * @returns the snapshot; the empty state (revision 0, etag null) when none was written yet
   * @throws IntegrityError when the object fails authentication (tampered, moved, another
   *   environment's); ValidationError when it does not match the schema
   */
  async read(): Promise<StateSnapshot> {
    const { GetObjectCommand } = await s3Sdk();
    let data: Buffer;
    let etag: string;
    try {
      const r = await this.deps.s3.send(new GetObjectCommand({ Bucket: this.deps.bucket, Key: this.key }));
      data = Buffer.from(await r.Body!.transformToByteArray());
      etag = r.ETag ?? '';
    } catch (e) {
      if (httpStatus(e) === 404 || (e as Error).name === 'NoSuchKey') {
        return { state: emptyState(this.deps.environment, this.deps.toolkitVersion), etag: null };
      }
      throw e;
    }
    const env = parseEnvelope(data, this.where);
    const key = await this.#keyring.decrypt(STATE_LAYER, env.encryptedKey);
    const plaintext = open(env, key, this.#binding());
    return {
      state: parseClusterState(plaintext, this.where, this.deps.environment),
      etag,
      encryptedKey: Buffer.from(env.encryptedKey),
    };
  }

  /**
   * Writes `next` in place of the snapshot it was derived from: revision + 1, this
   * toolkit's version, the time. Conditional on the snapshot's ETag.
   * @param opts.allowDowngrade act on a state written by a newer toolkit
   * @returns the new snapshot
   * @throws ConflictError (exit 3) when someone else wrote the state since `base` was read;
   *   UserError when `base` was written by a newer toolkit (see {@link assertNotDowngrade})
   */
  async write(
    base: StateSnapshot,
    next: ClusterState,
    opts: { allowDowngrade?: boolean } = {},
  ): Promise<StateSnapshot> {
    assertNotDowngrade(base.state, this.deps.toolkitVersion, Boolean(opts.allowDowngrade), this.where);
    const { PutObjectCommand } = await s3Sdk();
    const doc: ClusterState = {
      ...next,
      environment: this.deps.environment,
      revision: base.state.revision + 1,
      toolkitVersion: this.deps.toolkitVersion,
      updatedAt: new Date().toISOString(),
    };
    // validate what we write as strictly as what we read
    const plaintext = Buffer.from(`${JSON.stringify(doc, null, 1)}\n`);
    parseClusterState(plaintext, this.where, this.deps.environment);
    const dataKey = await this.#keyring.forLayer(STATE_LAYER, base.encryptedKey);
    let etag: string;
    try {
      this.puts++;
      const r = await this.deps.s3.send(
        new PutObjectCommand({
          Bucket: this.deps.bucket,
          Key: this.key,
          Body: seal(plaintext, dataKey, this.#binding()),
          ContentType: 'application/octet-stream',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: this.deps.kmsKeyId,
          ...(base.etag ? { IfMatch: base.etag } : { IfNoneMatch: '*' }),
        }),
      );
      etag = r.ETag ?? '';
    } catch (e) {
      const status = httpStatus(e);
      if (status === 412 || status === 409) {
        throw new ConflictError(
          `${this.where}: the cluster state was changed by someone else meanwhile (revision ${base.state.revision} is no longer current)`,
          { cause: e, hint: 'another operator (or another command) is working on this environment' },
        );
      }
      throw e;
    }
    log.debug(`cluster state ${this.where}: revision ${doc.revision}`);
    return { state: doc, etag, encryptedKey: dataKey.encrypted };
  }

  /**
   * Read-modify-write: reads the state, applies `mutate` to a copy, writes it if it changed.
   * On a conflict, reads again and re-applies `mutate` up to `opts.retries` times — only
   * for mutations that are correct on any base (e.g. `run` recording generations); the
   * journal of an operation never retries (its conflict means another operator).
   * @returns the snapshot written (or read, when `mutate` changed nothing)
   */
  async update(
    mutate: (s: ClusterState) => ClusterState | undefined,
    opts: { allowDowngrade?: boolean; retries?: number } = {},
  ): Promise<StateSnapshot> {
    for (let attempt = 0; ; attempt++) {
      const base = await this.read();
      assertNotDowngrade(base.state, this.deps.toolkitVersion, Boolean(opts.allowDowngrade), this.where);
      const next = mutate(structuredClone(base.state));
      if (!next || JSON.stringify(next) === JSON.stringify(base.state)) return base;
      try {
        return await this.write(base, next, opts);
      } catch (e) {
        if (e instanceof ConflictError && attempt < (opts.retries ?? 0)) continue;
        throw e;
      }
    }
  }
}

/**
 * Opens the cluster state of an environment: the state bucket, data keys from `kmsKeyId`
 * with the encryption context `{environment, layer: "state"}`.
 */
export async function openClusterState(
  aws: AwsClients,
  opts: { environment: string; bucket: string; kmsKeyId: string; toolkitVersion: string },
): Promise<ClusterStateStore> {
  return new ClusterStateStore({
    s3: await aws.s3(),
    keys: new KmsKeyService(await aws.kms(), opts.kmsKeyId),
    bucket: opts.bucket,
    environment: opts.environment,
    kmsKeyId: opts.kmsKeyId,
    toolkitVersion: opts.toolkitVersion,
  });
}
