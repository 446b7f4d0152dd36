import type { BootstrapNames } from '../config/topology.js';
import { PlatformError, UserError } from '../errors.js';
import { log } from '../log.js';
import type { BootstrapView } from '../policy/bootstrap-view.js';
import type { AwsClients } from './clients.js';
import { kmsSdk, s3Sdk } from './sdk.js';

/**
 * Bootstraps, idempotently and without prompts, what must exist before `terraform init`
 * (DESIGN.md §6): the environment's KMS key (with an alias and yearly rotation), the
 * Terraform state bucket and the secrets bucket — both versioned, default-encrypted with
 * SSE-KMS under that key, with all public access blocked and ACLs disabled.
 * Each step checks first and changes only what differs, so a second run makes no writes.
 */

/**
 * What bootstrap enforces on both buckets, checked and set on every run: versioning, all four
 * Block Public Access settings, default SSE-KMS under the environment key (with S3 Bucket Keys).
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html
 */
export const BUCKET_SETTINGS = {
  versioning: 'Enabled',
  publicAccessBlock: {
    BlockPublicAcls: true,
    BlockPublicPolicy: true,
    IgnorePublicAcls: true,
    RestrictPublicBuckets: true,
  },
  sseAlgorithm: 'aws:kms',
} as const;

/** bootstrap enables yearly automatic rotation on the key it creates (KMS EnableKeyRotation). */
export const KEY_ROTATION = true;

/**
 * The KMS key and buckets as bootstrap leaves them (every difference is fixed on each run),
 * for the policy rules. Pure.
 * @param kmsKeyArn the key's ARN when it exists; undefined before the first run (its alias stands in)
 */
export function bootstrapView(names: BootstrapNames, kmsKeyArn?: string): BootstrapView {
  const pab = BUCKET_SETTINGS.publicAccessBlock;
  const bucket = (name: string, role: 'state' | 'secrets') => ({
    name,
    role,
    versioning: BUCKET_SETTINGS.versioning,
    publicAccessBlock: {
      blockPublicAcls: pab.BlockPublicAcls,
      ignorePublicAcls: pab.IgnorePublicAcls,
      blockPublicPolicy: pab.BlockPublicPolicy,
      restrictPublicBuckets: pab.RestrictPublicBuckets,
    },
    encryption: { algorithm: BUCKET_SETTINGS.sseAlgorithm, kmsKeyId: kmsKeyArn ?? names.kmsAlias },
  });
  return {
    key: { alias: names.kmsAlias, rotation: KEY_ROTATION },
    buckets: [bucket(names.stateBucket, 'state'), bucket(names.secretsBucket, 'secrets')],
  };
}

export interface BootstrapResult {
  kmsKeyArn: string;
  kmsKeyId: string;
  /** what was created or fixed on this run (empty on a re-run) */
  changed: string[];
}

function status(e: unknown): number | undefined {
  return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

/**
 * Ensures the KMS key, state bucket and secrets bucket of an environment exist.
 * @throws PlatformError when a bucket name is taken by another account (HTTP 403)
 */
export async function bootstrap(
  aws: AwsClients,
  names: BootstrapNames,
  environment: string,
): Promise<BootstrapResult> {
  const changed: string[] = [];
  const { kmsKeyArn, kmsKeyId } = await ensureKey(aws, names.kmsAlias, environment, changed);
  for (const bucket of [names.stateBucket, names.secretsBucket]) {
    await ensureBucket(aws, bucket, kmsKeyArn, environment, changed);
  }
  return { kmsKeyArn, kmsKeyId, changed };
}

async function ensureKey(
  aws: AwsClients,
  alias: string,
  environment: string,
  changed: string[],
): Promise<{ kmsKeyArn: string; kmsKeyId: string }> {
  const kms = await aws.kms();
  const k = await kmsSdk();
  try {
    const d = await kms.send(new k.DescribeKeyCommand({ KeyId: alias }));
    const meta = d.KeyMetadata!;
    if (meta.KeyState === 'PendingDeletion' || meta.KeyState === 'Disabled') {
      throw new PlatformError(`KMS key ${alias} (${meta.KeyId}) is ${meta.KeyState}`, {
        hint: 'cancel the deletion / enable the key: secrets encrypted with it cannot be read otherwise',
      });
    }
    return { kmsKeyArn: meta.Arn!, kmsKeyId: meta.KeyId! };
  } catch (e) {
    if ((e as Error).name !== 'NotFoundException') throw e;
  }
  const created = await kms.send(
    new k.CreateKeyCommand({
      Description: `kube-platform ${environment}: envelope encryption of secrets and state`,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      Tags: [
        { TagKey: 'Environment', TagValue: environment },
        { TagKey: 'ManagedBy', TagValue: 'kube-platform' },
      ],
    }),
  );
  const meta = created.KeyMetadata!;
  await kms.send(new k.CreateAliasCommand({ AliasName: alias, TargetKeyId: meta.KeyId! }));
  if (KEY_ROTATION) await kms.send(new k.EnableKeyRotationCommand({ KeyId: meta.KeyId! }));
  changed.push(`KMS key ${alias}`);
  log.info(`created KMS key ${alias} (${meta.KeyId})`);
  return { kmsKeyArn: meta.Arn!, kmsKeyId: meta.KeyId! };
}

async function ensureBucket(
  aws: AwsClients,
  bucket: string,
  kmsKeyArn: string,
  environment: string,
  changed: string[],
): Promise<void> {
  const s3 = await aws.s3();
  const c = await s3Sdk();
  let exists = true;
  try {
    await s3.send(new c.HeadBucketCommand({ Bucket: bucket }));
  } catch (e) {
    const st = status(e);
    if (st === 403) {
      throw new PlatformError(`bucket ${bucket} exists but belongs to another account or denies access`);
    }
    if (st !== 404 && (e as Error).name !== 'NotFound') throw e;
    exists = false;
  }
  if (!exists) {
    await s3.send(
      new c.CreateBucketCommand({
        Bucket: bucket,
        ObjectOwnership: 'BucketOwnerEnforced',
        ...(aws.settings.region === 'us-east-1'
          ? {}
          : { CreateBucketConfiguration: { LocationConstraint: aws.settings.region as never } }),
      }),
    );
    await s3.send(
      new c.PutBucketTaggingCommand({
        Bucket: bucket,
        Tagging: {
          TagSet: [
            { Key: 'Environment', Value: environment },
            { Key: 'ManagedBy', Value: 'kube-platform' },
          ],
        },
      }),
    );
    changed.push(`bucket ${bucket}`);
    log.info(`created bucket ${bucket}`);
  }
  const v = await s3.send(new c.GetBucketVersioningCommand({ Bucket: bucket }));
  if (v.Status !== BUCKET_SETTINGS.versioning) {
    await s3.send(
      new c.PutBucketVersioningCommand({
        Bucket: bucket,
        VersioningConfiguration: { Status: BUCKET_SETTINGS.versioning },
      }),
    );
    changed.push(`versioning on ${bucket}`);
  }
  let encrypted = false;
  try {
    const enc = await s3.send(new c.GetBucketEncryptionCommand({ Bucket: bucket }));
    const rule = enc.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault;
    encrypted = rule?.SSEAlgorithm === BUCKET_SETTINGS.sseAlgorithm && rule.KMSMasterKeyID === kmsKeyArn;
  } catch {
    encrypted = false;
  }
  if (!encrypted) {
    await s3.send(
      new c.PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: {
          Rules: [
            {
              ApplyServerSideEncryptionByDefault: {
                SSEAlgorithm: BUCKET_SETTINGS.sseAlgorithm,
                KMSMasterKeyID: kmsKeyArn,
              },
              BucketKeyEnabled: true,
            },
          ],
        },
      }),
    );
    changed.push(`default encryption on ${bucket}`);
  }
  let blocked = false;
  try {
    const pab = await s3.send(new c.GetPublicAccessBlockCommand({ Bucket: bucket }));
    const p = pab.PublicAccessBlockConfiguration;
    blocked = Boolean(
      p?.BlockPublicAcls && p.BlockPublicPolicy && p.IgnorePublicAcls && p.RestrictPublicBuckets,
    );
  } catch {
    blocked = false;
  }
  if (!blocked) {
    await s3.send(
      new c.PutPublicAccessBlockCommand({
        Bucket: bucket,
        PublicAccessBlockConfiguration: { ...BUCKET_SETTINGS.publicAccessBlock },
      }),
    );
    changed.push(`public access block on ${bucket}`);
  }
}

/**
 * The ARN of the environment's KMS key, read only (DescribeKey on its alias): for commands
 * that must not create anything, such as the Terraform passthrough.
 * @throws UserError (exit 2) when the alias does not exist: `run` has not bootstrapped the environment
 */
export async function findKmsKeyArn(aws: AwsClients, alias: string): Promise<string> {
  const k = await kmsSdk();
  try {
    const d = await (await aws.kms()).send(new k.DescribeKeyCommand({ KeyId: alias }));
    return d.KeyMetadata!.Arn!;
  } catch (e) {
    if ((e as Error).name !== 'NotFoundException') throw e;
    throw new UserError(`KMS key ${alias} does not exist: the environment is not bootstrapped`, {
      hint: 'run it first: run -e ENV --plan',
    });
  }
}

/** What exists of the bootstrap, as read (no write) by {@link inspectBootstrap}. */
export interface BootstrapState {
  /** the KMS key behind the alias, when it exists */
  key?: { arn: string; id: string; state: string };
  buckets: {
    name: string;
    role: 'state' | 'secrets';
    exists: boolean;
    versioning: boolean;
    encrypted: boolean;
    publicAccessBlocked: boolean;
  }[];
}

/**
 * Reads the bootstrap's state with read requests only (KMS DescribeKey, S3 HeadBucket,
 * GetBucketVersioning, GetBucketEncryption, GetPublicAccessBlock): the input of
 * {@link planBootstrap}. Nothing is created or changed.
 * @throws PlatformError when a bucket belongs to another account (HTTP 403)
 */
export async function inspectBootstrap(aws: AwsClients, names: BootstrapNames): Promise<BootstrapState> {
  const kms = await aws.kms();
  const k = await kmsSdk();
  let key: BootstrapState['key'];
  try {
    const d = await kms.send(new k.DescribeKeyCommand({ KeyId: names.kmsAlias }));
    const meta = d.KeyMetadata!;
    key = { arn: meta.Arn!, id: meta.KeyId!, state: meta.KeyState ?? 'Enabled' };
  } catch (e) {
    if ((e as Error).name !== 'NotFoundException') throw e;
  }
  const s3 = await aws.s3();
  const c = await s3Sdk();
  const buckets: BootstrapState['buckets'] = [];
  for (const [name, role] of [
    [names.stateBucket, 'state'],
    [names.secretsBucket, 'secrets'],
  ] as const) {
    let exists = true;
    try {
      await s3.send(new c.HeadBucketCommand({ Bucket: name }));
    } catch (e) {
      const st = status(e);
      if (st === 403)
        throw new PlatformError(`bucket ${name} exists but belongs to another account or denies access`);
      if (st !== 404 && (e as Error).name !== 'NotFound') throw e;
      exists = false;
    }
    if (!exists) {
      buckets.push({ name, role, exists, versioning: false, encrypted: false, publicAccessBlocked: false });
      continue;
    }
    const v = await s3.send(new c.GetBucketVersioningCommand({ Bucket: name }));
    const enc = await s3.send(new c.GetBucketEncryptionCommand({ Bucket: name })).catch(() => undefined);
    const rule = enc?.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault;
    const pab = await s3.send(new c.GetPublicAccessBlockCommand({ Bucket: name })).catch(() => undefined);
    const p = pab?.PublicAccessBlockConfiguration;
    buckets.push({
      name,
      role,
      exists,
      versioning: v.Status === BUCKET_SETTINGS.versioning,
      encrypted: rule?.SSEAlgorithm === BUCKET_SETTINGS.sseAlgorithm && rule.KMSMasterKeyID === key?.arn,
      publicAccessBlocked: Boolean(
        p?.BlockPublicAcls && p.BlockPublicPolicy && p.IgnorePublicAcls && p.RestrictPublicBuckets,
      ),
    });
  }
  return { ...(key ? { key } : {}), buckets };
}

/**
 * What {@link bootstrap} would do to reach its settings from `state`, one line per action
 * (e.g. "create KMS key alias/kube-platform/prod", "enable versioning on s3://…"). Pure.
 * @returns [] when everything is in place
 * @throws PlatformError when the key is pending deletion or disabled (nothing could fix it safely)
 */
export function planBootstrap(state: BootstrapState, names: BootstrapNames): string[] {
  const actions: string[] = [];
  if (!state.key) actions.push(`create KMS key ${names.kmsAlias} (with yearly rotation)`);
  else if (state.key.state === 'PendingDeletion' || state.key.state === 'Disabled')
    throw new PlatformError(`KMS key ${names.kmsAlias} (${state.key.id}) is ${state.key.state}`, {
      hint: 'cancel the deletion / enable the key: secrets encrypted with it cannot be read otherwise',
    });
  for (const b of state.buckets) {
    if (!b.exists) {
      actions.push(`create bucket s3://${b.name} (${b.role}: versioned, SSE-KMS, public access blocked)`);
      continue;
    }
    if (!b.versioning) actions.push(`enable versioning on s3://${b.name}`);
    if (!b.encrypted) actions.push(`set default SSE-KMS encryption on s3://${b.name}`);
    if (!b.publicAccessBlocked) actions.push(`block public access on s3://${b.name}`);
  }
  return actions;
}
