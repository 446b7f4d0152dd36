import type { S3Client } from '@aws-sdk/client-s3';
import type { LimitFunction } from 'p-limit';
import { s3Sdk } from '../aws/sdk.js';
import type { StorageClients } from '../aws/storage-clients.js';
import { ConflictError, IntegrityError, PlatformError } from '../errors.js';
import { log } from '../log.js';
import { type Binding, type DataKey, open, parseEnvelope, seal, sha256 } from './envelope.js';
import {
  INDEX_FORMAT,
  type IndexEntry,
  isEmptyPlan,
  type LayerIndex,
  type LocalFileInfo,
  type PublishPlan,
  parseIndex,
  planPublish,
  serializeIndex,
} from './index-format.js';
import { Keyring, KmsKeyService } from './keyring.js';

/**
 * The secrets bucket protocol (DESIGN.md §4) over S3: publish a layer (upload changed
 * files, then the index with a conditional write) and read it back verified.
 *
 * Objects: `<layer>/<path>` (envelope-encrypted file), `index/<layer>` (envelope-encrypted
 * index), `status/<layer>/<node>` (agent reports). S3 conditional writes (If-Match /
 * If-None-Match on PutObject) make the index update a compare-and-swap; see the S3 user
 * guide "Add preconditions to S3 operations with conditional requests".
 */

/** A local file to publish: its metadata and bytes. */
export interface LocalFile extends LocalFileInfo {
  content: Buffer;
}

/** The current index of a layer as read from the bucket. */
export interface IndexSnapshot {
  index: LayerIndex;
  /** the S3 ETag of the index object (for conditional reads and writes) */
  etag: string;
  /** hex SHA-256 of the index plaintext (the next index's `previous`) */
  digest: string;
  /** the layer's KMS-encrypted data key, from the index object's header */
  encryptedKey: Buffer;
}

export interface PublishResult {
  layer: string;
  plan: PublishPlan;
  /** generation now current in the bucket (unchanged when nothing was published) */
  generation: number;
  /** false when nothing changed or --dry-run */
  published: boolean;
  /** number of PutObject requests made (files + index) */
  puts: number;
}

/** A publish whose files are uploaded and whose index is not yet written. */
export interface PreparedPublish {
  result: PublishResult;
  /** the index to write; undefined when there is nothing to publish (or a dry run) */
  next?: LayerIndex;
  key?: DataKey;
  base?: IndexSnapshot;
  /** write the index only if the current index object still has this ETag (recovery) */
  ifMatch?: string;
}

/** `ifMatch` value meaning "only if there is no current object" (the index was deleted). */
export const NO_OBJECT = '*none*';

/** One stored version of `index/<layer>` (S3 versioning keeps them), newest first. */
export interface IndexVersion {
  versionId: string;
  lastModified?: Date;
  /** true for the version S3 serves now */
  isLatest: boolean;
  etag: string;
  /** a delete marker: the index was deleted (it has no content) */
  deleteMarker?: boolean;
}

/**
 * Requests in flight per store (the uploads of its publishes, the downloads of its fetches,
 * its status reads), however many layers are published or fetched at once, when the
 * caller names no other number.
 */
export const DEFAULT_CONCURRENCY = 16;

export interface SecretStoreDeps {
  s3: S3Client;
  keyring: Keyring;
  bucket: string;
  environment: string;
  /** KMS key id/ARN/alias for SSE-KMS on top of the envelope */
  kmsKeyId: string;
  /**
   * file uploads and downloads in flight at once, shared by every publish and fetch of this
   * store; default {@link DEFAULT_CONCURRENCY}
   */
  concurrency?: number;
}

/**
 * An object version an index names is not in the bucket (deleted, or the index names a
 * version that never existed). Exit code 4. Carries the layer and file so a node agent can
 * keep that file's last good copy and apply the rest.
 */
export class MissingObjectError extends IntegrityError {
  constructor(
    message: string,
    readonly layer: string,
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

async function bodyBytes(body: unknown): Promise<Buffer> {
  const b = body as { transformToByteArray(): Promise<Uint8Array> };
  return Buffer.from(await b.transformToByteArray());
}

export class SecretStore {
  /** PutObject requests made since construction (benchmarks, tests) */
  puts = 0;
  /** GetObject requests made since construction */
  gets = 0;
  #limit?: LimitFunction;
  constructor(private readonly deps: SecretStoreDeps) {}

  /** The store's one limiter: layers prepared or fetched at once share its slots. */
  async #limiter(): Promise<LimitFunction> {
    if (!this.#limit) {
      const { default: pLimit } = await import('p-limit');
      this.#limit ??= pLimit(this.deps.concurrency ?? DEFAULT_CONCURRENCY);
    }
    return this.#limit;
  }

  get bucket(): string {
    return this.deps.bucket;
  }

  #binding(layer: string, path: string): Binding {
    return { environment: this.deps.environment, layer, path };
  }

  async #cmd() {
    return s3Sdk();
  }

  /**
   * Reads and verifies the index of `layer`.
   *
   * @param ifNoneMatch an ETag from an earlier read: the read is conditional (HTTP 304)
   * @returns the snapshot; `'not-modified'` when the ETag still matches; undefined when the
   *   layer has never been published
   * @param opts.abortSignal aborts the request (manifest-sync bounds every request with a timeout)
   * @param opts.observed receives the ETag of the object read before it is verified, so a
   *   caller can poll a refused index with If-None-Match instead of re-reading it
   * @throws IntegrityError when the index fails authentication or belongs elsewhere
   */
  async readIndex(
    layer: string,
    ifNoneMatch?: string,
    opts: { abortSignal?: AbortSignal; observed?: { etag?: string } } = {},
  ): Promise<IndexSnapshot | 'not-modified' | undefined> {
    const { GetObjectCommand } = await this.#cmd();
    const key = `index/${layer}`;
    let data: Buffer;
    let etag: string;
    try {
      this.gets++;
      const r = await this.deps.s3.send(
        new GetObjectCommand({ Bucket: this.deps.bucket, Key: key, IfNoneMatch: ifNoneMatch }),
        { abortSignal: opts.abortSignal },
      );
      data = await bodyBytes(r.Body);
      etag = r.ETag ?? '';
      if (opts.observed) opts.observed.etag = etag;
    } catch (e) {
      const status = httpStatus(e);
      if (status === 304) return 'not-modified';
      if (status === 404 || (e as Error).name === 'NoSuchKey') return undefined;
      throw e;
    }
    const env = parseEnvelope(data, key);
    const plainKey = await this.deps.keyring.decrypt(layer, env.encryptedKey);
    const plaintext = open(env, plainKey, this.#binding(layer, key));
    const index = parseIndex(plaintext, { environment: this.deps.environment, layer });
    return { index, etag, digest: sha256(plaintext), encryptedKey: Buffer.from(env.encryptedKey) };
  }

  /**
   * Publishes `files` as the new content of `layer`: {@link prepare} then {@link commit}.
   *
   * @param opts.dryRun plan only: no KMS data key, no PutObject
   * @param opts.base publish against this earlier read of the index (null: the layer was
   *   empty) instead of reading it now — e.g. the snapshot a plan was shown from
   * @throws ConflictError when another publisher wrote the index in between; the new index
   *   is not written, so nothing is published (uploaded objects are unreferenced versions)
   */
  async publish(
    layer: string,
    files: LocalFile[],
    opts: { dryRun?: boolean; base?: IndexSnapshot | null } = {},
  ): Promise<PublishResult> {
    const prepared = await this.prepare(layer, files, opts);
    return prepared.next ? this.commit(prepared) : prepared.result;
  }

  /**
   * First phase of a publish: plans against the index (read now, or `opts.base`) and
   * uploads added and changed files in parallel — by plaintext digest, so unchanged files
   * are never re-uploaded. Nothing is visible to readers until {@link commit}: readers go
   * through the index, and uploaded objects are new versions the current index does not
   * name. Several layers can be prepared first and committed after, so a conflict found
   * on the first commit publishes nothing at all.
   */
  async prepare(
    layer: string,
    files: LocalFile[],
    opts: {
      dryRun?: boolean;
      base?: IndexSnapshot | null;
      /** recovery: the generation to write (above every one seen) instead of base + 1 */
      generation?: number;
      /** recovery: commit only over the index object with this ETag (not base's) */
      ifMatch?: string;
    } = {},
  ): Promise<PreparedPublish> {
    const read = opts.base !== undefined ? (opts.base ?? undefined) : await this.readIndex(layer);
    if (read === 'not-modified') throw new Error('unreachable: unconditional read');
    const current = read;
    const plan = planPublish(files, current?.index);
    const generation = current?.index.generation ?? 0;
    const result: PublishResult = { layer, plan, generation, published: false, puts: 0 };
    if ((isEmptyPlan(plan) && opts.generation === undefined) || opts.dryRun) return { result };

    const { PutObjectCommand } = await this.#cmd();
    const key = await this.deps.keyring.forLayer(layer, current?.encryptedKey);
    const byPath = new Map(files.map((f) => [f.path, f]));
    const limit = await this.#limiter();
    const entries: Record<string, IndexEntry> = { ...(current?.index.files ?? {}) };
    for (const p of plan.removed) delete entries[p];
    for (const p of plan.modeChanged) entries[p] = { ...entries[p]!, mode: byPath.get(p)!.mode };
    await Promise.all(
      [...plan.added, ...plan.changed].map((p) =>
        limit(async () => {
          const f = byPath.get(p)!;
          const objectKey = `${layer}/${p}`;
          this.puts++;
          result.puts++;
          const r = await this.deps.s3.send(
            new PutObjectCommand({
              Bucket: this.deps.bucket,
              Key: objectKey,
              Body: seal(f.content, key, this.#binding(layer, objectKey)),
              ContentType: 'application/octet-stream',
              ServerSideEncryption: 'aws:kms',
              SSEKMSKeyId: this.deps.kmsKeyId,
            }),
          );
          if (!r.VersionId) {
            throw new PlatformError(
              `bucket ${this.deps.bucket} returned no VersionId: is versioning enabled?`,
            );
          }
          entries[p] = { sha256: f.sha256, size: f.size, mode: f.mode, versionId: r.VersionId };
        }),
      ),
    );
    const next: LayerIndex = {
      format: INDEX_FORMAT,
      environment: this.deps.environment,
      layer,
      generation: opts.generation ?? generation + 1,
      previous: current?.digest ?? null,
      updatedAt: new Date().toISOString(),
      files: entries,
    };
    return {
      result,
      next,
      key,
      ...(current ? { base: current } : {}),
      ...(opts.ifMatch ? { ifMatch: opts.ifMatch } : {}),
    };
  }

  /**
   * Every stored version of `index/<layer>` (ListObjectVersions, all pages), newest first,
   * delete markers included (`deleteMarker`).
   */
  async listIndexVersions(layer: string): Promise<IndexVersion[]> {
    const { ListObjectVersionsCommand } = await this.#cmd();
    const key = `index/${layer}`;
    const out: IndexVersion[] = [];
    let marker: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const page = await this.deps.s3.send(
        new ListObjectVersionsCommand({ Bucket: this.deps.bucket, Prefix: key, ...marker }),
      );
      for (const v of page.Versions ?? []) {
        if (v.Key !== key || !v.VersionId) continue;
        out.push({
          versionId: v.VersionId,
          ...(v.LastModified ? { lastModified: v.LastModified } : {}),
          isLatest: Boolean(v.IsLatest),
          etag: v.ETag ?? '',
        });
      }
      for (const m of page.DeleteMarkers ?? []) {
        if (m.Key !== key || !m.VersionId) continue;
        out.push({
          versionId: m.VersionId,
          ...(m.LastModified ? { lastModified: m.LastModified } : {}),
          isLatest: Boolean(m.IsLatest),
          etag: '',
          deleteMarker: true,
        });
      }
      if (!page.IsTruncated) break;
      marker = {
        ...(page.NextKeyMarker ? { KeyMarker: page.NextKeyMarker } : {}),
        ...(page.NextVersionIdMarker ? { VersionIdMarker: page.NextVersionIdMarker } : {}),
      };
    }
    return out.sort(
      (a, b) =>
        Number(b.isLatest) - Number(a.isLatest) ||
        (b.lastModified?.getTime() ?? 0) - (a.lastModified?.getTime() ?? 0),
    );
  }

  /**
   * Reads and verifies one stored version of `index/<layer>`, as {@link readIndex}.
   * @throws IntegrityError when it fails authentication or belongs elsewhere
   */
  async readIndexVersion(layer: string, versionId: string): Promise<IndexSnapshot> {
    const { GetObjectCommand } = await this.#cmd();
    const key = `index/${layer}`;
    this.gets++;
    const r = await this.deps.s3.send(
      new GetObjectCommand({ Bucket: this.deps.bucket, Key: key, VersionId: versionId }),
    );
    const data = await bodyBytes(r.Body);
    const env = parseEnvelope(data, key);
    const plainKey = await this.deps.keyring.decrypt(layer, env.encryptedKey);
    const plaintext = open(env, plainKey, this.#binding(layer, key));
    const index = parseIndex(plaintext, { environment: this.deps.environment, layer });
    return {
      index,
      etag: r.ETag ?? '',
      digest: sha256(plaintext),
      encryptedKey: Buffer.from(env.encryptedKey),
    };
  }

  /**
   * Second phase: writes the prepared index with a conditional write (If-Match the index
   * that was read, or If-None-Match for a first publish).
   * @throws ConflictError when someone else published the layer in between
   */
  async commit(prepared: PreparedPublish): Promise<PublishResult> {
    const { result, next, key, base, ifMatch } = prepared;
    if (!next || !key) return result;
    const { PutObjectCommand } = await this.#cmd();
    const layer = result.layer;
    const indexKey = `index/${layer}`;
    try {
      this.puts++;
      result.puts++;
      await this.deps.s3.send(
        new PutObjectCommand({
          Bucket: this.deps.bucket,
          Key: indexKey,
          Body: seal(serializeIndex(next), key, this.#binding(layer, indexKey)),
          ContentType: 'application/octet-stream',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: this.deps.kmsKeyId,
          ...(ifMatch === NO_OBJECT
            ? { IfNoneMatch: '*' }
            : ifMatch
              ? { IfMatch: ifMatch }
              : base
                ? { IfMatch: base.etag }
                : { IfNoneMatch: '*' }),
        }),
      );
    } catch (e) {
      const status = httpStatus(e);
      if (status === 412 || status === 409) {
        throw new ConflictError(
          `layer "${layer}" was published by someone else meanwhile (generation ${result.generation} is no longer current); this publish was not applied`,
          { cause: e, hint: 'fetch-secrets to see their change, then publish again' },
        );
      }
      throw e;
    }
    log.debug(`published ${layer}: generation ${next.generation}, ${result.puts} PutObject`);
    return { ...result, generation: next.generation, published: true };
  }

  /**
   * Fetches one file of `layer` by the VersionId its index entry names, decrypts it bound to
   * its path, and verifies size and SHA-256.
   * @param opts.abortSignal aborts the request
   * @throws MissingObjectError (an IntegrityError) when the version the index names is gone
   * @throws IntegrityError when authentication or the digest fails
   */
  async fetchFile(
    layer: string,
    path: string,
    entry: IndexEntry,
    opts: { abortSignal?: AbortSignal } = {},
  ): Promise<Buffer> {
    const { GetObjectCommand } = await this.#cmd();
    const objectKey = `${layer}/${path}`;
    this.gets++;
    let r: import('@aws-sdk/client-s3').GetObjectCommandOutput;
    try {
      r = await this.deps.s3.send(
        new GetObjectCommand({ Bucket: this.deps.bucket, Key: objectKey, VersionId: entry.versionId }),
        { abortSignal: opts.abortSignal },
      );
    } catch (e) {
      const name = (e as Error).name;
      if (name === 'NoSuchVersion' || name === 'NoSuchKey' || httpStatus(e) === 404) {
        throw new MissingObjectError(
          `${objectKey}: version ${entry.versionId}, which index/${layer} names, does not exist in the bucket (layer ${layer}, file ${path})`,
          layer,
          path,
          { cause: e },
        );
      }
      throw e;
    }
    const env = parseEnvelope(await bodyBytes(r.Body), objectKey);
    const plainKey = await this.deps.keyring.decrypt(layer, env.encryptedKey);
    const data = open(env, plainKey, this.#binding(layer, objectKey));
    if (data.length !== entry.size || sha256(data) !== entry.sha256) {
      throw new IntegrityError(`${objectKey}: content does not match the index digest`);
    }
    return data;
  }

  /**
   * Fetches every file of an index in parallel.
   * @returns map path → verified bytes
   */
  async fetchAll(
    layer: string,
    index: LayerIndex,
    only?: (path: string) => boolean,
  ): Promise<Map<string, Buffer>> {
    const limit = await this.#limiter();
    const out = new Map<string, Buffer>();
    await Promise.all(
      Object.entries(index.files)
        .filter(([p]) => !only || only(p))
        .map(([p, e]) =>
          limit(async () => {
            out.set(p, await this.fetchFile(layer, p, e));
          }),
        ),
    );
    return out;
  }

  /**
   * Writes a node's status report `status/<layer>/<node>` (manifest-sync, DESIGN.md §4):
   * plain JSON (it holds no secret; nodes write it, so it is not envelope-encrypted), with
   * SSE-KMS as every object of the bucket. A node role may write only `status/<its layer>/*`.
   *
   * @param node the node id (an EC2 instance id or a host name): [A-Za-z0-9._-], ≤ 255 chars
   * @param body the JSON document
   * @throws PlatformError for an unsafe node id
   */
  async putStatus(
    layer: string,
    node: string,
    body: unknown,
    opts: { abortSignal?: AbortSignal } = {},
  ): Promise<void> {
    if (!/^[A-Za-z0-9._-]{1,255}$/.test(node) || node === '.' || node === '..') {
      throw new PlatformError(`status/${layer}: unsafe node id ${JSON.stringify(node)}`);
    }
    const { PutObjectCommand } = await this.#cmd();
    this.puts++;
    await this.deps.s3.send(
      new PutObjectCommand({
        Bucket: this.deps.bucket,
        Key: `status/${layer}/${node}`,
        Body: `${JSON.stringify(body)}\n`,
        ContentType: 'application/json',
        ServerSideEncryption: 'aws:kms',
        SSEKMSKeyId: this.deps.kmsKeyId,
      }),
      { abortSignal: opts.abortSignal },
    );
  }

  /**
   * Reads every status report of `layer` (ListObjectsV2 on `status/<layer>/`, all pages,
   * then one GetObject each, in parallel).
   * @returns node id → parsed JSON (unknown: callers validate) and when it was written;
   *   a report that is not JSON comes back as `json: undefined`
   */
  async readStatuses(layer: string): Promise<{ node: string; json: unknown; lastModified?: Date }[]> {
    const { GetObjectCommand, paginateListObjectsV2 } = await this.#cmd();
    const prefix = `status/${layer}/`;
    const keys: string[] = [];
    for await (const page of paginateListObjectsV2(
      { client: this.deps.s3 },
      { Bucket: this.deps.bucket, Prefix: prefix },
    )) {
      for (const o of page.Contents ?? []) if (o.Key && o.Key.length > prefix.length) keys.push(o.Key);
    }
    const limit = await this.#limiter();
    return Promise.all(
      keys.sort().map((key) =>
        limit(async () => {
          this.gets++;
          const r = await this.deps.s3.send(new GetObjectCommand({ Bucket: this.deps.bucket, Key: key }));
          let json: unknown;
          try {
            json = JSON.parse((await bodyBytes(r.Body)).toString('utf8'));
          } catch {
            json = undefined;
          }
          return {
            node: key.slice(prefix.length),
            json,
            ...(r.LastModified ? { lastModified: r.LastModified } : {}),
          };
        }),
      ),
    );
  }

  /**
   * Reads an envelope-encrypted object of `layer` other than a file or the index (e.g. the
   * rollout record `rollout/<layer>`), authenticated with its path bound.
   * @param opts.ifNoneMatch conditional read: `'not-modified'` on HTTP 304
   * @param opts.versionId a version of the object (S3 versioning)
   * @returns plaintext with ETag and VersionId; undefined when the object does not exist
   * @throws IntegrityError when authentication fails
   */
  async readSealed(
    layer: string,
    key: string,
    opts: { ifNoneMatch?: string; versionId?: string; abortSignal?: AbortSignal } = {},
  ): Promise<{ plaintext: Buffer; etag: string; versionId?: string } | 'not-modified' | undefined> {
    const { GetObjectCommand } = await this.#cmd();
    let data: Buffer;
    let etag: string;
    let versionId: string | undefined;
    try {
      this.gets++;
      const r = await this.deps.s3.send(
        new GetObjectCommand({
          Bucket: this.deps.bucket,
          Key: key,
          IfNoneMatch: opts.ifNoneMatch,
          VersionId: opts.versionId,
        }),
        { abortSignal: opts.abortSignal },
      );
      data = await bodyBytes(r.Body);
      etag = r.ETag ?? '';
      versionId = r.VersionId;
    } catch (e) {
      const status = httpStatus(e);
      if (status === 304) return 'not-modified';
      if (status === 404 || (e as Error).name === 'NoSuchKey') return undefined;
      throw e;
    }
    const env = parseEnvelope(data, key);
    const plainKey = await this.deps.keyring.decrypt(layer, env.encryptedKey);
    return {
      plaintext: open(env, plainKey, this.#binding(layer, key)),
      etag,
      ...(versionId ? { versionId } : {}),
    };
  }

  /**
   * Writes an envelope-encrypted object of `layer` under the layer's data key (from its
   * current index), with a conditional write.
   * @param opts.ifMatch the ETag read; omitted: the object must not exist yet
   * @throws ConflictError when the condition fails; PlatformError when the layer has no index
   */
  async writeSealed(
    layer: string,
    key: string,
    body: Buffer,
    opts: { ifMatch?: string } = {},
  ): Promise<string> {
    const idx = await this.readIndex(layer);
    if (!idx || idx === 'not-modified') throw new PlatformError(`layer "${layer}" has no index yet`);
    const dataKey = await this.deps.keyring.forLayer(layer, idx.encryptedKey);
    const { PutObjectCommand } = await this.#cmd();
    try {
      this.puts++;
      const r = await this.deps.s3.send(
        new PutObjectCommand({
          Bucket: this.deps.bucket,
          Key: key,
          Body: seal(body, dataKey, this.#binding(layer, key)),
          ContentType: 'application/octet-stream',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: this.deps.kmsKeyId,
          ...(opts.ifMatch ? { IfMatch: opts.ifMatch } : { IfNoneMatch: '*' }),
        }),
      );
      return r.ETag ?? '';
    } catch (e) {
      const status = httpStatus(e);
      if (status === 412 || status === 409) {
        throw new ConflictError(`${key} was changed by someone else meanwhile`, { cause: e });
      }
      throw e;
    }
  }

  /** The VersionId of the current `index/<layer>` (HeadObject), undefined when there is none. */
  async indexVersionId(layer: string): Promise<string | undefined> {
    const { HeadObjectCommand } = await this.#cmd();
    try {
      const r = await this.deps.s3.send(
        new HeadObjectCommand({ Bucket: this.deps.bucket, Key: `index/${layer}` }),
      );
      return r.VersionId;
    } catch (e) {
      if (httpStatus(e) === 404) return undefined;
      throw e;
    }
  }
}

/**
 * The one way to open an environment's secrets bucket: a SecretStore over the S3 client of
 * `aws`, with a Keyring whose data keys come from `kmsKeyId` under the encryption context
 * {environment, layer} (DESIGN.md §4). Operator commands, the node agent, tests and
 * benchmarks all call this.
 *
 * @param opts.kmsKeyId key id, ARN or alias (`alias/kube-platform/<env>`): data keys and SSE-KMS
 * @param opts.concurrency file uploads/downloads in flight at once, for the whole store (default 16)
 * @returns the store and its KMS key service (`keys.requests` counts KMS calls)
 */
export async function openSecretStore(
  aws: StorageClients,
  opts: { environment: string; bucket: string; kmsKeyId: string; concurrency?: number },
): Promise<{ store: SecretStore; keys: KmsKeyService }> {
  const keys = new KmsKeyService(await aws.kms(), opts.kmsKeyId);
  const store = new SecretStore({
    s3: await aws.s3(),
    keyring: new Keyring(keys, opts.environment),
    bucket: opts.bucket,
    environment: opts.environment,
    kmsKeyId: opts.kmsKeyId,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
  });
  return { store, keys };
}
