import type { BootstrapNames } from '../config/topology.js';
import { log } from '../log.js';
import type { AwsClients } from './clients.js';
import { kmsSdk, s3Sdk } from './sdk.js';

/**
 * Deletes what bootstrap created: both buckets with every object version and delete
 * marker, and schedules the KMS key for deletion after the minimum waiting period of 7 days
 * (AWS KMS "Deleting AWS KMS keys": 7–30 days, cancellable meanwhile).
 */
export async function purge(aws: AwsClients, names: BootstrapNames): Promise<void> {
  const s3 = await aws.s3();
  const c = await s3Sdk();
  for (const bucket of [names.secretsBucket, names.stateBucket]) {
    let removed = 0;
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    do {
      const page = await s3.send(
        new c.ListObjectVersionsCommand({
          Bucket: bucket,
          KeyMarker: keyMarker,
          VersionIdMarker: versionMarker,
        }),
      );
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      versionMarker = page.IsTruncated ? page.NextVersionIdMarker : undefined;
      const objects = [...(page.Versions ?? []), ...(page.DeleteMarkers ?? [])].map((v) => ({
        Key: v.Key!,
        VersionId: v.VersionId!,
      }));
      for (let i = 0; i < objects.length; i += 1000) {
        const batch = objects.slice(i, i + 1000);
        await s3.send(
          new c.DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: batch, Quiet: true } }),
        );
        removed += batch.length;
      }
    } while (keyMarker);
    await s3.send(new c.DeleteBucketCommand({ Bucket: bucket }));
    log.info(`deleted s3://${bucket} (${removed} object versions)`);
  }
  const k = await kmsSdk();
  const kms = await aws.kms();
  const d = await kms.send(new k.DescribeKeyCommand({ KeyId: names.kmsAlias }));
  await kms.send(new k.DeleteAliasCommand({ AliasName: names.kmsAlias }));
  await kms.send(new k.ScheduleKeyDeletionCommand({ KeyId: d.KeyMetadata!.KeyId!, PendingWindowInDays: 7 }));
  log.info(
    `KMS key ${d.KeyMetadata!.KeyId} scheduled for deletion in 7 days (cancel with aws kms cancel-key-deletion)`,
  );
}
