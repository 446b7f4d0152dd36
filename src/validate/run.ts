import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { AwsClients } from '../aws/clients.js';
import { listAsgs, listInstances } from '../aws/inventory.js';
import { ExitCode, PlatformError } from '../errors.js';
import { readLayerStatuses } from '../fleet/convergence.js';
import { type KubeApi, KubeUnreachableError } from '../kube/api.js';
import type { SecretStore } from '../secrets/store.js';
import type { ClusterState } from '../state/schema.js';
import {
  type ClusterSnapshot,
  DEFAULT_LIMITS,
  type Failure,
  type ValidateLimits,
  validateSnapshot,
} from './checks.js';

/**
 * Gathering a snapshot and repeating validations (`validate`, and `roll` between
 * replacements). The checks themselves are pure (checks.ts).
 */

/** The cluster did not validate (exit 5, as a wait that timed out). */
export class UnhealthyError extends PlatformError {
  override readonly exitCode: number = ExitCode.timeout;
}

export interface CollectDeps {
  aws: AwsClients;
  environment: string;
  store: SecretStore;
  kube: KubeApi;
  /** the cluster state read at the start (certificates, member map) */
  state?: ClusterState;
  now?: () => Date;
}

/**
 * Reads one snapshot: /readyz first (so an unreachable API fails at once, before any
 * other call), then nodes and pods, ASGs and instances, the masters' status records and
 * the secure layer's generation.
 * @throws KubeUnreachableError when the API server does not answer /readyz
 */
export async function collectSnapshot(d: CollectDeps): Promise<ClusterSnapshot> {
  await d.kube.readyz();
  const [nodes, pods, asgs, instances, statuses, secure] = await Promise.all([
    d.kube.listNodes(),
    d.kube.listPods(),
    listAsgs(d.aws, d.environment),
    listInstances(d.aws, d.environment),
    readLayerStatuses(d.store, 'secure'),
    d.store.readIndex('secure'),
  ]);
  const memberOf: Record<string, string> = {};
  for (const [name, m] of Object.entries(d.state?.etcdMembers ?? {}))
    if (m.instance) memberOf[m.instance] = name;
  return {
    now: d.now?.() ?? new Date(),
    asgs,
    instances,
    nodes,
    pods,
    masterStatuses: Object.fromEntries(statuses),
    secureGeneration: secure && secure !== 'not-modified' ? secure.index.generation : 0,
    certificates: d.state?.pki ?? [],
    memberOf,
  };
}

export interface ValidateLoopOptions {
  /** one attempt: a snapshot's failures; an unreachable API is a failure of check `api` */
  attempt: () => Promise<Failure[]>;
  /** keep trying until `count` consecutive passes or the timeout; false: one attempt */
  wait: boolean;
  /** consecutive passes needed with `wait` @default 2 */
  count: number;
  /** seconds between attempts @default 10 */
  intervalS: number;
  /** seconds before giving up with `wait` @default 900 */
  timeoutS: number;
  onAttempt?: (r: { attempt: number; failures: Failure[]; consecutive: number }) => void;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

export interface ValidateResult {
  passed: boolean;
  attempts: number;
  /** the last attempt's failures */
  failures: Failure[];
  /** true when `wait` ran out of time */
  timedOut: boolean;
  elapsedS: number;
}

/**
 * Validates once, or with `wait` until `count` consecutive passes `intervalS` apart
 * (kops rolling-update validates twice, 10 s apart: one pass can be a flap, kops#8078).
 * A failure resets the count.
 */
export async function validateLoop(o: ValidateLoopOptions): Promise<ValidateResult> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const start = now();
  const deadline = start + o.timeoutS * 1000;
  const needed = o.wait ? Math.max(1, o.count) : 1;
  let consecutive = 0;
  let attempts = 0;
  for (;;) {
    const failures = await o.attempt();
    attempts++;
    consecutive = failures.length ? 0 : consecutive + 1;
    o.onAttempt?.({ attempt: attempts, failures, consecutive });
    const elapsedS = (now() - start) / 1000;
    if (consecutive >= needed) return { passed: true, attempts, failures, timedOut: false, elapsedS };
    if (!o.wait && failures.length) return { passed: false, attempts, failures, timedOut: false, elapsedS };
    if (now() + o.intervalS * 1000 > deadline)
      return { passed: false, attempts, failures, timedOut: true, elapsedS };
    await sleep(o.intervalS * 1000);
  }
}

/** One attempt over `collect`: its failures, or the API's unreachability as one. */
export async function attemptValidation(
  collect: () => Promise<ClusterSnapshot>,
  limits: ValidateLimits = DEFAULT_LIMITS,
): Promise<Failure[]> {
  try {
    return validateSnapshot(await collect(), limits);
  } catch (e) {
    if (e instanceof KubeUnreachableError)
      return [{ check: 'api', subject: 'kube-apiserver', message: e.message }];
    throw e;
  }
}

/**
 * The kubeconfig to reach the cluster with: `explicit` (a file), else the local working
 * copy's `locked/admin.conf`, else `locked/admin.conf` from the secrets bucket (verified
 * like every fetch) — so validate works after the local copy was deleted.
 * @throws PlatformError when none is found
 */
export async function loadKubeconfig(
  explicit: string | undefined,
  secretsRoot: string,
  store: SecretStore,
): Promise<{ text: string; from: string }> {
  if (explicit) return { text: await readFile(explicit, 'utf8'), from: explicit };
  const local = path.join(secretsRoot, 'locked', 'admin.conf');
  const text = await readFile(local, 'utf8').catch(() => undefined);
  if (text) return { text, from: local };
  const snap = await store.readIndex('locked');
  const entry = snap && snap !== 'not-modified' ? snap.index.files['admin.conf'] : undefined;
  if (!entry) {
    throw new PlatformError(
      'no admin kubeconfig: neither --kubeconfig, nor locked/admin.conf locally or in the bucket',
      {
        hint: 'run `run` (it creates the PKI) or pass --kubeconfig',
      },
    );
  }
  const data = await store.fetchFile('locked', 'admin.conf', entry);
  return { text: data.toString('utf8'), from: `s3://${store.bucket}/locked/admin.conf` };
}
