import { PlatformError } from '../errors.js';
import { classifyAwsError } from './errors.js';
import { s3Sdk } from './sdk.js';
import type { StorageClients } from './storage-clients.js';

/**
 * Plain S3 objects the toolkit reads or writes outside the secrets protocol: the agent bundle
 * (content-addressed, in the state bucket) and the Terraform state object.
 */

/**
 * Whether `s3://bucket/key` exists (HeadObject: a read).
 * @returns false only for a 404 (NotFound/NoSuchKey)
 * @throws PlatformError for a 403 (access denied is never "absent") or any other failure
 */
export async function objectExists(aws: StorageClients, bucket: string, key: string): Promise<boolean> {
  const { HeadObjectCommand } = await s3Sdk();
  try {
    await (await aws.s3()).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (e) {
    const kind = classifyAwsError(e);
    if (kind === 'not-found') return false;
    throw new PlatformError(
      kind === 'access-denied'
        ? `s3://${bucket}/${key}: access denied (HeadObject 403): cannot tell whether it exists`
        : `s3://${bucket}/${key}: HeadObject failed: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

/** Uploads a plain object with SSE-KMS under `kmsKeyArn` (the agent bundle). */
export async function putPlainObject(
  aws: StorageClients,
  o: { bucket: string; key: string; body: Uint8Array; contentType: string; kmsKeyArn: string },
): Promise<void> {
  const { PutObjectCommand } = await s3Sdk();
  await (await aws.s3()).send(
    new PutObjectCommand({
      Bucket: o.bucket,
      Key: o.key,
      Body: o.body,
      ContentType: o.contentType,
      ServerSideEncryption: 'aws:kms',
      SSEKMSKeyId: o.kmsKeyArn,
    }),
  );
}

/**
 * The S3 VersionId of the current `s3://bucket/key` (HeadObject: a read), e.g. of the
 * Terraform state object, so that a saved plan can tell later whether the state changed.
 * Source: Amazon S3 API Reference "HeadObject" (`x-amz-version-id`; "null" in a bucket
 * whose versioning was never enabled).
 * @returns the VersionId ("null" when the bucket is not versioned); undefined when the object
 *   or the bucket does not exist (404)
 * @throws PlatformError for a 403 (access denied is never "absent") or any other failure
 */
export async function objectVersion(
  aws: StorageClients,
  bucket: string,
  key: string,
): Promise<string | undefined> {
  const { HeadObjectCommand } = await s3Sdk();
  try {
    const r = await (await aws.s3()).send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return r.VersionId ?? 'null';
  } catch (e) {
    const kind = classifyAwsError(e);
    if (kind === 'not-found') return undefined;
    throw new PlatformError(
      kind === 'access-denied'
        ? `s3://${bucket}/${key}: access denied (HeadObject 403): cannot read its version`
        : `s3://${bucket}/${key}: HeadObject failed: ${(e as Error).message}`,
      { cause: e },
    );
  }
}
