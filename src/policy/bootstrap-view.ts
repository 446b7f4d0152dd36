/**
 * What the bootstrap (src/aws/bootstrap.ts) leaves in place, as the policy rules read it: the
 * environment's KMS key and its two buckets, as they will be once the bootstrap plan is
 * applied (on a built environment: as they are, plus what the plan fixes).
 */
export interface BootstrapView {
  key: {
    /** e.g. alias/kube-platform-prod */
    alias: string;
    /** yearly automatic rotation (KMS EnableKeyRotation) */
    rotation: boolean;
  };
  buckets: BucketView[];
}

export interface BucketView {
  name: string;
  role: 'state' | 'secrets';
  /** S3 versioning status: 'Enabled', 'Suspended' or undefined (never enabled) */
  versioning?: string;
  /** the four S3 Block Public Access settings */
  publicAccessBlock: {
    blockPublicAcls: boolean;
    ignorePublicAcls: boolean;
    blockPublicPolicy: boolean;
    restrictPublicBuckets: boolean;
  };
  /** default encryption: SSE algorithm ('aws:kms', 'AES256') and the KMS key, when any */
  encryption?: { algorithm: string; kmsKeyId?: string };
}
