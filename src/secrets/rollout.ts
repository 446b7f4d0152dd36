import { z } from 'zod';
import { ConflictError, IntegrityError, PlatformError, UserError } from '../errors.js';
import { sha256 } from './envelope.js';
import { parseIndex, serializeIndex } from './index-format.js';
import type { NodeStatus } from './status.js';
import type { IndexSnapshot, PreparedPublish, PublishResult, SecretStore } from './store.js';

/**
 * Staged rollouts of a layer (DESIGN.md §8; the steps are in src/secrets/README.md
 * "Staged rollout"): `rollout/<layer>`, envelope-encrypted beside `index/<layer>` under the
 * layer's data key (so a node cannot forge one: nodes may not write outside `status/`, and
 * the path is bound as additional data), names the target generation (and its index
 * digest), the previous one (generation and the VersionId of its index object, which S3
 * versioning keeps), the masters in rollout order and those allowed to take the target.
 * An agent whose node is not allowed applies the previous index instead; after an abort
 * every agent returns to it.
 */

export const ROLLOUT_FORMAT = 'kube-platform/rollout/v1';

const recordSchema = z
  .object({
    format: z.literal(ROLLOUT_FORMAT),
    environment: z.string(),
    layer: z.string(),
    strategy: z.enum(['staged', 'all-at-once']),
    target: z.object({ generation: z.number().int().positive(), digest: z.string() }),
    previous: z.object({ generation: z.number().int().nonnegative(), versionId: z.string() }).nullable(),
    /** node ids in the order they take the target */
    order: z.array(z.string()),
    allowed: z.array(z.string()),
    /** node id → ISO time it was allowed */
    promotedAt: z.record(z.string(), z.string()),
    state: z.enum(['in-progress', 'complete', 'failed', 'aborted']),
    failure: z.object({ node: z.string(), error: z.string() }).nullable(),
    updatedAt: z.string(),
  })
  .strict();

export type RolloutRecord = z.infer<typeof recordSchema>;

/** The object key of a layer's rollout record. */
export const rolloutKey = (layer: string) => `rollout/${layer}`;

/** Parses a record. @throws IntegrityError when it is not one of this environment and layer */
export function parseRollout(
  plaintext: Buffer,
  where: { environment: string; layer: string },
): RolloutRecord {
  let json: unknown;
  try {
    json = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw new IntegrityError(`${rolloutKey(where.layer)}: not JSON`);
  }
  const r = recordSchema.safeParse(json);
  if (!r.success) throw new IntegrityError(`${rolloutKey(where.layer)}: not a rollout record`);
  if (r.data.environment !== where.environment || r.data.layer !== where.layer) {
    throw new IntegrityError(`${rolloutKey(where.layer)}: belongs to ${r.data.environment}/${r.data.layer}`);
  }
  return r.data;
}

/** What an agent applies. */
export type Choice = { use: 'latest' } | { use: 'previous'; versionId: string; generation: number };

/**
 * Which index node `node` applies, given the latest index and the rollout record. Pure.
 * A record about another generation (an old one, or a replay) is ignored.
 */
export function chooseIndex(
  record: RolloutRecord | undefined,
  latest: { generation: number; digest: string },
  node: string,
): Choice {
  if (!record?.previous) return { use: 'latest' };
  if (record.target.generation !== latest.generation || record.target.digest !== latest.digest) {
    return { use: 'latest' };
  }
  const back = {
    use: 'previous' as const,
    versionId: record.previous.versionId,
    generation: record.previous.generation,
  };
  if (record.state === 'complete') return { use: 'latest' };
  if (record.state === 'aborted') return back;
  return record.allowed.includes(node) ? { use: 'latest' } : back;
}

/** Whether a node's status shows it on the target, healthy, reported after it was allowed. */
export function healthyOn(
  s: NodeStatus | undefined,
  record: RolloutRecord,
  node: string,
): { ok: true } | { ok: false; why: string } {
  if (!s) return { ok: false, why: 'no status reported' };
  if (s.generation !== record.target.generation || s.indexDigest !== record.target.digest) {
    // the agent's error says why it did not take the target (e.g. the etcd snapshot before it)
    const at = `at generation ${s.generation}, not ${record.target.generation}`;
    return { ok: false, why: s.error ? `${at}: ${s.error}` : at };
  }
  if (s.error) return { ok: false, why: s.error };
  if (s.fileErrors.length)
    return { ok: false, why: s.fileErrors.map((f) => `${f.path}: ${f.error}`).join('; ') };
  const since = Date.parse(record.promotedAt[node] ?? record.updatedAt);
  if (!s.health?.etcd || !s.health.apiserver) return { ok: false, why: 'no etcd/API server health reported' };
  const { etcd, apiserver } = s.health;
  if (Date.parse(etcd.checkedAt) < since || Date.parse(apiserver.checkedAt) < since) {
    return { ok: false, why: 'health not yet reported since it took the target' };
  }
  if (!etcd.healthy) return { ok: false, why: `etcd member unhealthy: ${etcd.reason || 'unknown'}` };
  if (!apiserver.ready) return { ok: false, why: `API server not ready: ${apiserver.detail || 'unknown'}` };
  return { ok: true };
}

/** The next step of a rollout. */
export type Step =
  | { kind: 'promote'; node: string }
  | { kind: 'wait'; node: string; why: string }
  | { kind: 'fail'; node: string; why: string }
  | { kind: 'complete' }
  | { kind: 'done' };

/**
 * The next step, from the record and the statuses at `nowMs`. Pure.
 * The last allowed node must be healthy on the target (within `timeoutS` of its promotion)
 * before the next is allowed; all-at-once allows everyone at once.
 */
export function nextStep(
  record: RolloutRecord,
  statuses: Map<string, NodeStatus>,
  nowMs: number,
  timeoutS: number,
): Step {
  if (record.state !== 'in-progress') return { kind: 'done' };
  for (const node of record.allowed) {
    const h = healthyOn(statuses.get(node), record, node);
    if (!h.ok) {
      const age = (nowMs - Date.parse(record.promotedAt[node] ?? record.updatedAt)) / 1000;
      return age > timeoutS ? { kind: 'fail', node, why: h.why } : { kind: 'wait', node, why: h.why };
    }
  }
  const next = record.order.find((n) => !record.allowed.includes(n));
  return next ? { kind: 'promote', node: next } : { kind: 'complete' };
}

/** Reads the record of `layer`; undefined when there is none. */
export async function readRollout(
  store: SecretStore,
  environment: string,
  layer: string,
): Promise<{ record: RolloutRecord; etag: string } | undefined> {
  const r = await store.readSealed(layer, rolloutKey(layer));
  if (!r || r === 'not-modified') return undefined;
  return { record: parseRollout(r.plaintext, { environment, layer }), etag: r.etag };
}

async function writeRollout(store: SecretStore, record: RolloutRecord, etag?: string): Promise<string> {
  const body = Buffer.from(`${JSON.stringify({ ...record, updatedAt: new Date().toISOString() })}\n`);
  return store.writeSealed(record.layer, rolloutKey(record.layer), body, etag ? { ifMatch: etag } : {});
}

/**
 * Refuses to publish over a rollout that has not ended: a record in progress (or failed)
 * whose target is the layer's current generation means some masters still run the previous
 * one, and a new generation would strand them between two.
 * @param current the layer's current generation (undefined: never published)
 * @returns the record read (undefined when there is none), for a conditional overwrite
 * @throws ConflictError (exit 3) naming the generation and the rollout's state
 */
export async function assertNoRolloutInProgress(
  store: SecretStore,
  environment: string,
  layer: string,
  current: number | undefined,
): Promise<{ record: RolloutRecord; etag: string } | undefined> {
  const existing = await readRollout(store, environment, layer);
  if (existing && (existing.record.state === 'in-progress' || existing.record.state === 'failed')) {
    if (existing.record.target.generation === current) {
      throw new ConflictError(
        `a rollout of ${layer} generation ${existing.record.target.generation} is ${existing.record.state}` +
          (existing.record.failure
            ? ` (${existing.record.failure.node}: ${existing.record.failure.error})`
            : ''),
        {
          hint: `rollout resume -e ${environment} (after fixing the named master) or rollout abort -e ${environment} first`,
        },
      );
    }
  }
  return existing;
}

/**
 * The generation masters not yet allowed stay on: the current index — unless the current
 * index is the target of an aborted rollout, whose masters went back to its `previous`:
 * they stay there (else a new rollout would hand them the generation just aborted).
 */
export function previousOf(
  existing: RolloutRecord | undefined,
  base: IndexSnapshot | undefined,
  baseVersionId: string | undefined,
): RolloutRecord['previous'] {
  if (!base || !baseVersionId) return null;
  if (existing?.state === 'aborted' && existing.target.generation === base.index.generation) {
    return existing.previous;
  }
  return { generation: base.index.generation, versionId: baseVersionId };
}

/**
 * Publishes a prepared layer as a staged rollout: the record naming the new generation is
 * written first (allowed: nobody, or everyone for all-at-once), then the index; agents
 * that read the new index before they are allowed keep the previous one.
 * @param order node ids (the masters) in rollout order
 * @throws ConflictError when a rollout of the layer is still in progress, or another
 *   publisher won the index write (the record is then marked aborted)
 */
export async function publishStaged(
  store: SecretStore,
  environment: string,
  prepared: PreparedPublish,
  opts: { order: string[]; strategy?: 'staged' | 'all-at-once' },
): Promise<{ result: PublishResult; record?: RolloutRecord }> {
  if (!prepared.next) return { result: prepared.result };
  const layer = prepared.result.layer;
  const existing = await assertNoRolloutInProgress(
    store,
    environment,
    layer,
    prepared.base?.index.generation,
  );
  const base: IndexSnapshot | undefined = prepared.base;
  const previousVersion = base ? await store.indexVersionId(layer) : undefined;
  const strategy = opts.strategy ?? 'staged';
  const now = new Date().toISOString();
  const record: RolloutRecord = {
    format: ROLLOUT_FORMAT,
    environment,
    layer,
    strategy,
    target: { generation: prepared.next.generation, digest: sha256(serializeIndex(prepared.next)) },
    previous: previousOf(existing?.record, base, previousVersion),
    order: opts.order,
    allowed: strategy === 'all-at-once' ? [...opts.order] : [],
    promotedAt: strategy === 'all-at-once' ? Object.fromEntries(opts.order.map((n) => [n, now])) : {},
    // all-at-once (playgrounds): every master takes it now; nothing is left to drive
    state: strategy === 'all-at-once' ? 'complete' : 'in-progress',
    failure: null,
    updatedAt: now,
  };
  let etag = await writeRollout(store, record, existing?.etag);
  try {
    const result = await store.commit(prepared);
    return { result, record };
  } catch (e) {
    etag = await writeRollout(store, { ...record, state: 'aborted' }, etag);
    throw e;
  }
}

/** Statuses of a layer by node id (parsed; unparsable reports left out). */
export async function statusesOf(
  store: SecretStore,
  layer: string,
  parse: (json: unknown) => NodeStatus | undefined,
): Promise<Map<string, NodeStatus>> {
  const out = new Map<string, NodeStatus>();
  for (const r of await store.readStatuses(layer)) {
    const s = parse(r.json);
    if (s) out.set(r.node, s);
  }
  return out;
}

/**
 * Drives a rollout to its end: promotes the next master only after the last one reports
 * healthy on the target; stops at the first that does not within `timeoutS`, recording it.
 * @returns the final record
 * @throws PlatformError naming the master and its error when the rollout failed
 */
export async function driveRollout(
  store: SecretStore,
  environment: string,
  layer: string,
  opts: {
    timeoutS: number;
    pollMs?: number;
    parse: (json: unknown) => NodeStatus | undefined;
    log?: (line: string) => void;
    signal?: AbortSignal;
  },
): Promise<RolloutRecord> {
  for (;;) {
    const cur = await readRollout(store, environment, layer);
    if (!cur) throw new UserError(`no rollout of ${layer} to drive`);
    let { record } = cur;
    if (record.state === 'failed') record = { ...record, state: 'in-progress', failure: null };
    const step = nextStep(record, await statusesOf(store, layer, opts.parse), Date.now(), opts.timeoutS);
    if (step.kind === 'done') return record;
    if (step.kind === 'wait') {
      if (opts.signal?.aborted) return record;
      await new Promise((r) => setTimeout(r, opts.pollMs ?? 1000));
      continue;
    }
    if (step.kind === 'fail') {
      await writeRollout(
        store,
        { ...record, state: 'failed', failure: { node: step.node, error: step.why } },
        cur.etag,
      );
      throw new PlatformError(
        `rollout of ${layer} generation ${record.target.generation} stopped: ${step.node} is not healthy: ${step.why}`,
        {
          hint: 'the other masters stay on the previous generation; rollout abort, or fix it and rollout resume',
        },
      );
    }
    const next: RolloutRecord =
      step.kind === 'complete'
        ? { ...record, state: 'complete' }
        : {
            ...record,
            allowed: [...record.allowed, step.node],
            promotedAt: { ...record.promotedAt, [step.node]: new Date().toISOString() },
          };
    await writeRollout(store, next, cur.etag);
    opts.log?.(
      step.kind === 'complete'
        ? `rollout of ${layer} complete`
        : `${step.node} may take generation ${record.target.generation}`,
    );
    if (step.kind === 'complete') return next;
  }
}

/**
 * Aborts the rollout of `layer`: every agent returns to (or stays on) the previous generation.
 * @throws UserError when there is no rollout in progress or it has no previous generation
 */
export async function abortRollout(
  store: SecretStore,
  environment: string,
  layer: string,
): Promise<RolloutRecord> {
  const cur = await readRollout(store, environment, layer);
  if (!cur || cur.record.state === 'complete' || cur.record.state === 'aborted') {
    throw new UserError(`no rollout of ${layer} in progress`);
  }
  if (!cur.record.previous)
    throw new UserError(`the rollout of ${layer} has no previous generation to return to`);
  const next: RolloutRecord = { ...cur.record, state: 'aborted', allowed: [] };
  await writeRollout(store, next, cur.etag);
  return next;
}

/**
 * The agent's side: keeps the layer's record (conditional GETs) and picks the index to apply.
 */
export class RolloutGate {
  #etag?: string;
  #record?: RolloutRecord;
  constructor(
    private readonly store: SecretStore,
    private readonly environment: string,
    private readonly layer: string,
    private readonly node: string,
  ) {}

  #refreshed = false;

  /** The record as last read (undefined: none, or not read yet). */
  get record(): RolloutRecord | undefined {
    return this.#record;
  }

  /**
   * True when the record cannot change without a new index: it was read at least once and
   * there is none, or it is `complete` or `aborted` (a new rollout writes its record, then
   * the new index: publishStaged; resume and abort act only on `in-progress`/`failed`). An
   * idle agent then polls the index alone — one request a tick — and re-reads the record
   * only when the index changed (read after the index, so it is at least as new as the
   * record written before that index).
   */
  get settled(): boolean {
    return (
      this.#refreshed && (this.#record === undefined || ['complete', 'aborted'].includes(this.#record.state))
    );
  }

  /** Re-reads the record if it changed. @returns true when it changed */
  async refresh(signal?: AbortSignal): Promise<boolean> {
    const r = await this.store.readSealed(this.layer, rolloutKey(this.layer), {
      ...(this.#etag ? { ifNoneMatch: this.#etag } : {}),
      ...(signal ? { abortSignal: signal } : {}),
    });
    this.#refreshed = true;
    if (r === 'not-modified') return false;
    if (!r) {
      const had = this.#record !== undefined;
      this.#record = undefined;
      this.#etag = undefined;
      return had;
    }
    this.#record = parseRollout(r.plaintext, { environment: this.environment, layer: this.layer });
    this.#etag = r.etag;
    return true;
  }

  /** The snapshot to apply instead of `latest`, and whether going back to it is authorised. */
  async choose(
    latest: IndexSnapshot,
    signal?: AbortSignal,
  ): Promise<{ snap: IndexSnapshot; revert?: number }> {
    const c = chooseIndex(
      this.#record,
      { generation: latest.index.generation, digest: latest.digest },
      this.node,
    );
    if (c.use === 'latest') return { snap: latest };
    // by VersionId, bounded by the agent's request signal, authenticated like the current index
    const r = await this.store.readSealed(this.layer, `index/${this.layer}`, {
      versionId: c.versionId,
      ...(signal ? { abortSignal: signal } : {}),
    });
    if (!r || r === 'not-modified') {
      throw new IntegrityError(
        `index/${this.layer} version ${c.versionId} (generation ${c.generation}) is missing`,
      );
    }
    const prev = {
      index: parseIndex(r.plaintext, { environment: this.environment, layer: this.layer }),
      digest: sha256(r.plaintext),
    };
    if (prev.index.generation !== c.generation) {
      throw new IntegrityError(
        `index/${this.layer} version ${c.versionId} is not generation ${c.generation}`,
      );
    }
    return { snap: { ...latest, index: prev.index, digest: prev.digest }, revert: c.generation };
  }
}

/**
 * `rollout status` lines: the rollout's state, then each master in order with where it is
 * and, for the one that stopped it, its error. Pure.
 */
export function describeRollout(record: RolloutRecord, statuses: Map<string, NodeStatus>): string[] {
  const head =
    record.state === 'failed' && record.failure
      ? `rollout of ${record.layer} generation ${record.target.generation}: failed at ${record.failure.node}: ${record.failure.error}`
      : `rollout of ${record.layer} generation ${record.target.generation} (from ${record.previous?.generation ?? 'nothing'}): ${record.state}`;
  const lines = [head];
  for (const n of record.order) {
    const s = statuses.get(n);
    const h = healthyOn(s, record, n);
    const where = s ? `generation ${s.generation}` : 'no status';
    const allowed = record.allowed.includes(n) ? 'allowed' : 'waiting';
    lines.push(
      `  ${n}: ${allowed}, ${where}${h.ok ? ', healthy' : record.allowed.includes(n) ? `, ${h.why}` : ''}`,
    );
  }
  return lines;
}
