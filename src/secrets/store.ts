import type { S3Client } from '@aws-sdk/client-s3';
import { ConflictError, IntegrityError, PlatformError } from '../errors.js';
import { log } from '../log.js';
import { type Binding, open, parseEnvelope, seal, sha256 } from './envelope.js';
import {
  INDEX_FORMAT,
  type IndexEntry,
  isEmptyPlan,
  type LayerIndex,
  type LocalFileInfo,
  parseIndex,
  planPublish,
  type PublishPlan,
  serializeIndex,
} from './index-format.js';
import type { Keyring } from './keyring.js';

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

export interface SecretStoreDeps {
  s3: S3Client;
  keyring: Keyring;
  bucket: string;
  environment: string;
  /** KMS key id/ARN/alias for SSE-KMS on top of the envelope */
  kmsKeyId: string;
  /** parallel requests per publish/fetch; default 16 */
  concurrency?: number;
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
  constructor(private readonly deps: SecretStoreDeps) {}

  get bucket(): string {
    return this.deps.bucket;
  }

  #binding(layer: string, path: string): Binding {
    return { environment: this.deps.environment, layer, path };
  }

  async #cmd() {
    return import('@aws-sdk/client-s3');
  }

  /**
   * Reads and verifies the index of `layer`.
   *
   * @param ifNoneMatch an ETag from an earlier read: the read is conditional (HTTP 304)
   * @returns the snapshot; `'not-modified'` when the ETag still matches; undefined when the
   *   layer has never been published
   * @throws IntegrityError when the index fails authentication or belongs elsewhere
   */
  async readIndex(layer: string, ifNoneMatch?: string): Promise<IndexSnapshot | 'not-modified' | undefined> {
    const { GetObjectCommand } = await this.#cmd();
    const key = `index/${layer}`;
    let data: Buffer;
    let etag: string;
    try {
      this.gets++;
      const r = await this.deps.s3.send(
        new GetObjectCommand({ Bucket: this.deps.bucket, Key: key, IfNoneMatch: ifNoneMatch }),
      );
      data = await bodyBytes(r.Body);
      etag = r.ETag ?? '';
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
   * Publishes `files` as the new content of `layer`: uploads added and changed files in
   * parallel (by plaintext digest: unchanged files are never re-uploaded), then writes the
   * index with generation + 1 conditionally on the index read at the start.
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
    const read = opts.base !== undefined ? (opts.base ?? undefined) : await this.readIndex(layer);
    if (read === 'not-modified') throw new Error('unreachable: unconditional read');
    const current = read;
    const plan = planPublish(files, current?.index);
    const generation = current?.index.generation ?? 0;
    if (isEmptyPlan(plan) || opts.dryRun) return { layer, plan, generation, published: false, puts: 0 };

    const { PutObjectCommand } = await this.#cmd();
    const { default: pLimit } = await import('p-limit');
    const key = await this.deps.keyring.forLayer(layer, current?.encryptedKey);
    const byPath = new Map(files.map((f) => [f.path, f]));
    const limit = pLimit(this.deps.concurrency ?? 16);
    const entries: Record<string, IndexEntry> = { ...(current?.index.files ?? {}) };
    for (const p of plan.removed) delete entries[p];
    for (const p of plan.modeChanged) entries[p] = { ...entries[p]!, mode: byPath.get(p)!.mode };
    let puts = 0;
    await Promise.all(
      [...plan.added, ...plan.changed].map((p) =>
        limit(async () => {
          const f = byPath.get(p)!;
          const objectKey = `${layer}/${p}`;
          this.puts++;
          puts++;
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
            throw new PlatformError(`bucket ${this.deps.bucket} returned no VersionId: is versioning enabled?`);
          }
          entries[p] = { sha256: f.sha256, size: f.size, mode: f.mode, versionId: r.VersionId };
        }),
      ),
    );
    const next: LayerIndex = {
      format: INDEX_FORMAT,
      environment: this.deps.environment,
      layer,
      generation: generation + 1,
      previous: current?.digest ?? null,
      updatedAt: new Date().toISOString(),
      files: entries,
    };
    const indexKey = `index/${layer}`;
    try {
      this.puts++;
      puts++;
      await this.deps.s3.send(
        new PutObjectCommand({
          Bucket: this.deps.bucket,
          Key: indexKey,
          Body: seal(serializeIndex(next), key, this.#binding(layer, indexKey)),
          ContentType: 'application/octet-stream',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: this.deps.kmsKeyId,
          ...(current ? { IfMatch: current.etag } : { IfNoneMatch: '*' }),
        }),
      );
    } catch (e) {
      const status = httpStatus(e);
      if (status === 412 || status === 409) {
        throw new ConflictError(
          `layer "${layer}" was published by someone else while this publish ran (index generation ${generation} is no longer current); nothing was published`,
          { cause: e, hint: 'fetch-secrets to see their change, then publish again' },
        );
      }
      throw e;
    }
    log.debug(`published ${layer}: generation ${next.generation}, ${puts} PutObject`);
    return { layer, plan, generation: next.generation, published: true, puts };
  }

  /**
   * Fetches one file of `layer` by the VersionId its index entry names, decrypts it bound to
   * its path, and verifies size and SHA-256.
   * @throws IntegrityError when authentication or the digest fails
   */
  async fetchFile(layer: string, path: string, entry: IndexEntry): Promise<Buffer> {
    const { GetObjectCommand } = await this.#cmd();
    const objectKey = `${layer}/${path}`;
    this.gets++;
    const r = await this.deps.s3.send(
      new GetObjectCommand({ Bucket: this.deps.bucket, Key: objectKey, VersionId: entry.versionId }),
    );
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
  async fetchAll(layer: string, index: LayerIndex, only?: (path: string) => boolean): Promise<Map<string, Buffer>> {
    const { default: pLimit } = await import('p-limit');
    const limit = pLimit(this.deps.concurrency ?? 16);
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
}
