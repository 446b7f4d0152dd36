import type { GetObjectCommandOutput, S3Client } from '@aws-sdk/client-s3';
import { s3Sdk } from '../aws/sdk.js';
import { ConflictError, IntegrityError, UserError } from '../errors.js';
import { type Binding, encryptionContext, open, parseEnvelope, seal, sha256 } from '../secrets/envelope.js';
import type { KeyService } from '../secrets/keyring.js';

/**
 * etcd snapshots in the environment's secrets bucket (DESIGN.md §8 "etcd backups").
 *
 * Object: `backups/etcd/<taken-at>-<member>.db` where taken-at is UTC `YYYYMMDDTHHMMSS.mmmZ`
 * (milliseconds, so two snapshots of one label in the same second, such as an interrupted
 * roll's and its rerun's `pre-roll`, get two keys; keys written before had whole seconds,
 * `YYYYMMDDTHHMMSSZ`, and are still read),
 * in the envelope wire format of src/secrets/envelope.ts: AES-256-GCM under a data key of
 * its own (one KMS GenerateDataKey per snapshot) with the encryption context
 * `{environment, layer: "backups"}` — a layer of its own, so a role that may read manifests
 * cannot decrypt the cluster's data, and the object path bound as additional data (a
 * snapshot copied to another key or from another environment fails authentication).
 * SSE-KMS on top. Written once (`If-None-Match: *`). User metadata (unauthenticated; a
 * lie in it is caught on download by the digest and etcd's own hash):
 *   kp-sha256 plaintext SHA-256 (hex), kp-size bytes, kp-revision, kp-member, kp-etcd.
 *
 * Election of the member that takes the snapshot of a 15-minute slot: a conditional write
 * of `backups/etcd-lease/<slot>` (If-None-Match: *); the first master's PutObject wins, the
 * others get 412 and skip the slot (S3 user guide, "conditional requests").
 */

export const BACKUP_LAYER = 'backups';
export const BACKUP_PREFIX = 'backups/etcd/';
export const LEASE_PREFIX = 'backups/etcd-lease/';
/** Snapshots are kept in memory while sealed; refuse larger ones (etcd's default quota is 2 GiB). */
export const MAX_SNAPSHOT_BYTES = 8 * 1024 ** 3 - 1;

const KEY_RE = /^backups\/etcd\/(\d{8}T\d{6}(?:\.\d{3})?Z)-([A-Za-z0-9._-]{1,128})\.db$/;

/** A snapshot object as listed. */
export interface BackupObject {
  key: string;
  /** when it was taken (from the key), ms since the epoch */
  takenAtMs: number;
  member: string;
  /** size of the object in the bucket (ciphertext) */
  objectSize: number;
  versionId?: string;
}

/** What is recorded with a snapshot. */
export interface BackupMeta {
  sha256: string;
  size: number;
  revision: number;
  member: string;
  etcdVersion?: string;
}

/** UTC `YYYYMMDDTHHMMSS.mmmZ` of a time given in ms since the epoch (ISO 8601 basic format). */
export function compactTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '');
}

/** The object key of a snapshot taken at `ms` by `member`. @throws UserError for an unsafe member name */
export function backupKey(ms: number, member: string): string {
  const k = `${BACKUP_PREFIX}${compactTime(ms)}-${member}.db`;
  if (!KEY_RE.test(k)) throw new UserError(`member name ${JSON.stringify(member)}: use [A-Za-z0-9._-]`);
  return k;
}

/**
 * Parses a snapshot key, in either form (`...T234216.123Z-m.db` or, written before
 * milliseconds, `...T234216Z-m.db`, read as .000); undefined for anything else under the prefix.
 */
export function parseBackupKey(key: string): { takenAtMs: number; member: string } | undefined {
  const m = KEY_RE.exec(key);
  if (!m) return undefined;
  const t = m[1]!;
  const frac = t.length > 16 ? t.slice(15, 19) : '';
  const iso = `${t.slice(0, 4)}-${t.slice(4, 6)}-${t.slice(6, 8)}T${t.slice(9, 11)}:${t.slice(11, 13)}:${t.slice(13, 15)}${frac}Z`;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? { takenAtMs: ms, member: m[2]! } : undefined;
}

function httpStatus(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export interface BackupStoreDeps {
  s3: S3Client;
  keys: KeyService;
  bucket: string;
  environment: string;
  /** KMS key for SSE-KMS on top of the envelope */
  kmsKeyId: string;
}

export class BackupStore {
  constructor(private readonly deps: BackupStoreDeps) {}

  #binding(path: string): Binding {
    return { environment: this.deps.environment, layer: BACKUP_LAYER, path };
  }

  async #s3() {
    return s3Sdk();
  }

  /**
   * Seals and uploads a snapshot (one KMS GenerateDataKey, one PutObject with If-None-Match).
   * @returns the object key and its VersionId
   * @throws ConflictError when the key exists already; UserError for a snapshot over the size limit
   */
  async upload(
    snapshot: Buffer,
    meta: Omit<BackupMeta, 'sha256' | 'size'>,
    takenAtMs: number,
  ): Promise<{ key: string; versionId: string; meta: BackupMeta }> {
    if (snapshot.length > MAX_SNAPSHOT_BYTES) throw new UserError('snapshot larger than 8 GiB');
    const key = backupKey(takenAtMs, meta.member);
    const full: BackupMeta = { ...meta, sha256: sha256(snapshot), size: snapshot.length };
    const dataKey = await this.deps.keys.generateDataKey(
      encryptionContext({ environment: this.deps.environment, layer: BACKUP_LAYER }),
    );
    const body = seal(snapshot, dataKey, this.#binding(key));
    dataKey.plaintext.fill(0);
    const { PutObjectCommand } = await this.#s3();
    try {
      const r = await this.deps.s3.send(
        new PutObjectCommand({
          Bucket: this.deps.bucket,
          Key: key,
          Body: body,
          IfNoneMatch: '*',
          ContentType: 'application/octet-stream',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: this.deps.kmsKeyId,
          Metadata: {
            'kp-sha256': full.sha256,
            'kp-size': String(full.size),
            'kp-revision': String(full.revision),
            'kp-member': full.member,
            ...(full.etcdVersion ? { 'kp-etcd': full.etcdVersion } : {}),
          },
        }),
      );
      return { key, versionId: r.VersionId ?? '', meta: full };
    } catch (e) {
      const s = httpStatus(e);
      if (s === 412 || s === 409) throw new ConflictError(`${key} exists already`, { cause: e });
      throw e;
    }
  }

  /**
   * Downloads, authenticates and decrypts a snapshot, and checks its SHA-256 and size
   * against what was recorded at upload.
   * @throws IntegrityError for a flipped byte, a snapshot from another path or environment,
   *   a missing or mismatching digest; UserError when the key is not a snapshot
   */
  async download(key: string, versionId?: string): Promise<{ snapshot: Buffer; meta: BackupMeta }> {
    if (!parseBackupKey(key))
      throw new UserError(`${key}: not a snapshot key (backups/etcd/<time>-<member>.db)`);
    const { GetObjectCommand } = await this.#s3();
    let r: GetObjectCommandOutput;
    try {
      r = await this.deps.s3.send(
        new GetObjectCommand({ Bucket: this.deps.bucket, Key: key, VersionId: versionId }),
      );
    } catch (e) {
      if (httpStatus(e) === 404) throw new UserError(`${key}: no such snapshot`, { cause: e });
      throw e;
    }
    const data = Buffer.from(await r.Body!.transformToByteArray());
    const env = parseEnvelope(data, key);
    const plainKey = await this.deps.keys.decryptDataKey(
      Buffer.from(env.encryptedKey),
      encryptionContext({ environment: this.deps.environment, layer: BACKUP_LAYER }),
    );
    const snapshot = open(env, plainKey, this.#binding(key));
    plainKey.fill(0);
    const md = r.Metadata ?? {};
    const meta: BackupMeta = {
      sha256: md['kp-sha256'] ?? '',
      size: Number(md['kp-size'] ?? Number.NaN),
      revision: Number(md['kp-revision'] ?? 0),
      member: md['kp-member'] ?? '',
      ...(md['kp-etcd'] ? { etcdVersion: md['kp-etcd'] } : {}),
    };
    if (snapshot.length !== meta.size || sha256(snapshot) !== meta.sha256) {
      throw new IntegrityError(
        `${key}: the decrypted snapshot does not match the SHA-256 recorded at upload`,
      );
    }
    return { snapshot, meta };
  }

  /** Every snapshot under `backups/etcd/`, oldest first (ListObjectsV2, all pages). */
  async list(): Promise<BackupObject[]> {
    const { paginateListObjectsV2 } = await this.#s3();
    const out: BackupObject[] = [];
    for await (const page of paginateListObjectsV2(
      { client: this.deps.s3 },
      { Bucket: this.deps.bucket, Prefix: BACKUP_PREFIX },
    )) {
      for (const o of page.Contents ?? []) {
        const p = o.Key ? parseBackupKey(o.Key) : undefined;
        if (p) out.push({ key: o.Key!, ...p, objectSize: o.Size ?? 0 });
      }
    }
    return out.sort((a, b) => a.takenAtMs - b.takenAtMs || a.key.localeCompare(b.key));
  }

  /** The recorded metadata of one snapshot (HeadObject). */
  async head(key: string): Promise<BackupMeta> {
    const { HeadObjectCommand } = await this.#s3();
    const r = await this.deps.s3.send(new HeadObjectCommand({ Bucket: this.deps.bucket, Key: key }));
    const md = r.Metadata ?? {};
    return {
      sha256: md['kp-sha256'] ?? '',
      size: Number(md['kp-size'] ?? 0),
      revision: Number(md['kp-revision'] ?? 0),
      member: md['kp-member'] ?? '',
      ...(md['kp-etcd'] ? { etcdVersion: md['kp-etcd'] } : {}),
    };
  }

  /**
   * Deletes snapshots for good: every version of each key (ListObjectVersions, then
   * DeleteObjects by VersionId), so retention frees the storage instead of leaving
   * noncurrent versions behind delete markers.
   * @returns the number of object versions deleted
   */
  async remove(keys: string[]): Promise<number> {
    if (keys.length === 0) return 0;
    const { ListObjectVersionsCommand, DeleteObjectsCommand } = await this.#s3();
    const wanted = new Set(keys);
    const victims: { Key: string; VersionId: string }[] = [];
    let marker: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const page = await this.deps.s3.send(
        new ListObjectVersionsCommand({ Bucket: this.deps.bucket, Prefix: BACKUP_PREFIX, ...marker }),
      );
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        if (v.Key && v.VersionId && wanted.has(v.Key)) victims.push({ Key: v.Key, VersionId: v.VersionId });
      }
      if (!page.IsTruncated) break;
      marker = { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker };
    }
    for (let i = 0; i < victims.length; i += 1000) {
      await this.deps.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.deps.bucket,
          Delete: { Objects: victims.slice(i, i + 1000), Quiet: true },
        }),
      );
    }
    return victims.length;
  }

  /**
   * Deletes slot leases older than `maxAgeS` (every version): one lease is written per
   * interval, so without this they would pile up (96 a day at 15 minutes).
   * @returns the number of object versions deleted
   */
  async removeOldLeases(nowMs: number, maxAgeS = 86_400): Promise<number> {
    const { ListObjectVersionsCommand, DeleteObjectsCommand } = await this.#s3();
    const victims: { Key: string; VersionId: string }[] = [];
    let marker: { KeyMarker?: string; VersionIdMarker?: string } = {};
    for (;;) {
      const page = await this.deps.s3.send(
        new ListObjectVersionsCommand({ Bucket: this.deps.bucket, Prefix: LEASE_PREFIX, ...marker }),
      );
      for (const v of [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])]) {
        const old = v.LastModified && nowMs - v.LastModified.getTime() > maxAgeS * 1000;
        if (v.Key && v.VersionId && old) victims.push({ Key: v.Key, VersionId: v.VersionId });
      }
      if (!page.IsTruncated) break;
      marker = { KeyMarker: page.NextKeyMarker, VersionIdMarker: page.NextVersionIdMarker };
    }
    for (let i = 0; i < victims.length; i += 1000) {
      await this.deps.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.deps.bucket,
          Delete: { Objects: victims.slice(i, i + 1000), Quiet: true },
        }),
      );
    }
    return victims.length;
  }

  /**
   * Claims the backup slot `slot` for `member` with a conditional write.
   * @returns true when this member won the slot; false when another member holds it
   */
  async claimSlot(slot: string, member: string): Promise<boolean> {
    const { PutObjectCommand } = await this.#s3();
    try {
      await this.deps.s3.send(
        new PutObjectCommand({
          Bucket: this.deps.bucket,
          Key: `${LEASE_PREFIX}${slot}`,
          Body: `${JSON.stringify({ member, at: new Date().toISOString() })}\n`,
          IfNoneMatch: '*',
          ContentType: 'application/json',
          ServerSideEncryption: 'aws:kms',
          SSEKMSKeyId: this.deps.kmsKeyId,
        }),
      );
      return true;
    } catch (e) {
      const s = httpStatus(e);
      if (s === 412 || s === 409) return false;
      throw e;
    }
  }
}
