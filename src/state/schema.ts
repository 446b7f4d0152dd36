import { z } from 'zod';
import { ValidationError } from '../errors.js';

/**
 * The cluster-state document (DESIGN.md §8, issue 13 item 4): one per environment, in the
 * environment's state bucket, envelope-encrypted (src/state/store.ts). It is the record
 * kops keeps in its state store and RKE in `cluster.rkestate`, without their failure modes:
 * it lives in the bucket (a lost laptop loses nothing, rke#1446), every write is a
 * compare-and-swap (no lost update), and it names the toolkit version that last wrote it
 * (an older toolkit refuses to act on it, kops#1612).
 *
 * Shape (JSON, `format` = {@link STATE_FORMAT}):
 *   revision        1 on the first write, +1 on every write
 *   toolkitVersion  semver of the toolkit that last wrote it
 *   versions        per layer: desired and observed Kubernetes and etcd versions
 *   etcdMembers     member name → its ENI, EBS volume and current instance
 *   pki             every certificate: path, SHA-256 fingerprint of the DER, notAfter
 *   generations     per secrets layer: the index generation last published
 *   lastValidation, lastRollout, lastBackup
 *   operation       the journal of the operation in progress (a roll), or null
 *   upgrade         the journal of the last `upgrade --to` (src/upgrade/phases.ts): target,
 *                   phases done in order, the phase started, the desired version of each
 *                   component; absent in documents written before it existed
 */

export const STATE_FORMAT = 'kube-platform/cluster-state/v1';

const isoTime = z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'an ISO 8601 time');

const versionPair = z.object({
  kubernetes: z.string().nullable(),
  etcd: z.string().nullable(),
});

const layerVersions = z.object({ desired: versionPair, observed: versionPair });

const etcdMember = z.object({
  /** fixed private IP of the member's ENI */
  ip: z.string().nullable(),
  eni: z.string().nullable(),
  volume: z.string().nullable(),
  /** the instance that holds ENI and volume now; null while none does */
  instance: z.string().nullable(),
});

const certificate = z.object({
  /** path in the secrets tree, e.g. `secure/pki/apiserver.crt` or `locked/admin.conf` */
  path: z.string(),
  /** hex SHA-256 of the certificate's DER (what `openssl x509 -fingerprint -sha256` prints) */
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  notAfter: isoTime,
  subject: z.string(),
});

const validationRecord = z.object({
  at: isoTime,
  passed: z.boolean(),
  /** failure messages, each naming its node, pod, member or certificate */
  failures: z.array(z.string()),
});

const rolloutRecord = z.object({
  at: isoTime,
  operationId: z.string(),
  layer: z.string(),
  result: z.enum(['completed', 'failed', 'aborted']),
  replaced: z.array(z.string()),
  skipped: z.array(z.string()),
});

const backupRecord = z.object({ at: isoTime, key: z.string() });

/** What a journal step records, in the order a replacement takes them. */
export const STEP_ACTIONS = [
  'cordon',
  'drain',
  'drain-skipped',
  'terminate',
  'replaced',
  'validated',
  'done',
] as const;
export type StepAction = (typeof STEP_ACTIONS)[number];

const journalStep = z.object({
  /** the instance being replaced */
  instanceId: z.string(),
  action: z.enum(STEP_ACTIONS),
  /** when the step was recorded: before the action is taken */
  at: isoTime,
  detail: z.string().optional(),
});

const operation = z.object({
  id: z.string(),
  kind: z.enum(['roll']),
  layer: z.string(),
  /** who holds the operation: the AWS identity, the host and the process */
  owner: z.object({ arn: z.string(), host: z.string(), pid: z.number().int() }),
  startedAt: isoTime,
  /** refreshed on every step and periodically; a stale heartbeat lets a rerun take over */
  heartbeatAt: isoTime,
  /** the instances to replace, decided when the operation started */
  targets: z.array(z.string()),
  /** replacements the operation saw come up, old instance → new instance */
  replacements: z.record(z.string(), z.string()),
  steps: z.array(journalStep),
  /** set when the operation was interrupted (Ctrl-C): a rerun resumes at once */
  interruptedAt: isoTime.nullable(),
});

const upgradeRecord = z.object({
  target: z.object({ kubernetes: z.string(), etcd: z.string() }),
  /** what the environment file rendered when the upgrade began */
  from: z.object({ kubernetes: z.string(), etcd: z.string() }),
  /** phases done, in the order they finished (names of src/upgrade/phases.ts PHASES) */
  done: z.array(z.string()),
  /** the phase started and not finished, or null */
  started: z.string().nullable(),
  /** component → the version the rendered manifests (or launch templates) give it now */
  desired: z.record(z.string(), z.string()),
  /** every phase start and end, in order */
  events: z.array(z.object({ phase: z.string(), event: z.enum(['started', 'done']), at: isoTime })),
  startedAt: isoTime,
  updatedAt: isoTime,
  /** who runs it (as a roll's operation): a rerun elsewhere is refused while the holder lives */
  owner: z.object({ arn: z.string(), host: z.string(), pid: z.number().int() }).optional(),
  /** refreshed while it runs; older than the lease (300 s) lets another operator resume it */
  heartbeatAt: isoTime.optional(),
});

export const clusterStateSchema = z
  .object({
    format: z.literal(STATE_FORMAT),
    environment: z.string(),
    revision: z.number().int().positive(),
    toolkitVersion: z.string(),
    updatedAt: isoTime,
    versions: z.record(z.string(), layerVersions),
    etcdMembers: z.record(z.string(), etcdMember),
    pki: z.array(certificate),
    generations: z.record(z.string(), z.number().int().nonnegative()),
    lastValidation: validationRecord.nullable(),
    lastRollout: rolloutRecord.nullable(),
    lastBackup: backupRecord.nullable(),
    operation: operation.nullable(),
    upgrade: upgradeRecord.nullable().optional(),
  })
  .strict();

export type ClusterState = z.infer<typeof clusterStateSchema>;
export type Operation = z.infer<typeof operation>;
export type JournalStep = z.infer<typeof journalStep>;
export type CertificateRecord = z.infer<typeof certificate>;
export type EtcdMemberRecord = z.infer<typeof etcdMember>;
export type ValidationRecord = z.infer<typeof validationRecord>;
export type RolloutRecord = z.infer<typeof rolloutRecord>;
export type UpgradeRecord = z.infer<typeof upgradeRecord>;

/** The document before the first write (revision 0 is never stored). */
export function emptyState(environment: string, toolkitVersion: string): ClusterState {
  return {
    format: STATE_FORMAT,
    environment,
    revision: 0 as number,
    toolkitVersion,
    updatedAt: new Date(0).toISOString(),
    versions: {},
    etcdMembers: {},
    pki: [],
    generations: {},
    lastValidation: null,
    lastRollout: null,
    lastBackup: null,
    operation: null,
  };
}

/**
 * Parses and validates the plaintext of a state document.
 * @param where names the object in errors, e.g. `s3://bucket/cluster-state/prod`
 * @throws ValidationError listing every key that does not fit the schema (key path and
 *   message; values are never echoed, the document can name secrets' fingerprints)
 */
export function parseClusterState(
  plaintext: Buffer | string,
  where: string,
  environment: string,
): ClusterState {
  let json: unknown;
  try {
    json = JSON.parse(plaintext.toString());
  } catch {
    throw new ValidationError(`${where}: the cluster state is not JSON`, [
      { file: where, message: 'not JSON' },
    ]);
  }
  const r = clusterStateSchema.safeParse(json);
  if (!r.success) {
    throw new ValidationError(
      `${where}: the cluster state does not match ${STATE_FORMAT}`,
      r.error.issues.map((i) => ({ file: where, key: i.path.join('.') || '(root)', message: i.message })),
    );
  }
  if (r.data.environment !== environment) {
    throw new ValidationError(`${where}: the cluster state belongs to another environment`, [
      { file: where, key: 'environment', message: `is "${r.data.environment}", expected "${environment}"` },
    ]);
  }
  return r.data;
}
