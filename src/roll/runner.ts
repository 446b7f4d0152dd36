import { randomUUID } from 'node:crypto';
import type { AwsClients } from '../aws/clients.js';
import {
  describeFleetAsgs,
  describeFleetInstances,
  type FleetInstance,
  instanceState,
  memberResources,
  terminateInAsg,
} from '../aws/fleet.js';
import { AbortError, ConflictError, TimeoutError } from '../errors.js';
import { readLayerStatuses } from '../fleet/convergence.js';
import type { KubeApi } from '../kube/api.js';
import { log } from '../log.js';
import type { SecretStore } from '../secrets/store.js';
import {
  beginOperation,
  finishOperation,
  heartbeat,
  interruptOperation,
  type Owner,
  recordReplacement,
  recordStep,
  stepsOf,
} from '../state/journal.js';
import type { ClusterState, Operation, StepAction } from '../state/schema.js';
import type { ClusterStateStore } from '../state/store.js';
import { nodeOf } from '../validate/checks.js';
import type { ValidateResult } from '../validate/run.js';
import { drainNode } from './drain.js';
import { JournalWriter } from './journal-writer.js';
import { planRoll, quorumGate, type Replacement, type RollLayer, staleReports } from './plan.js';
import { type RollBackups, snapshotGate, takeRollSnapshot } from './snapshot.js';

/**
 * The rolling replacement itself (issue 13 items 2 and 3): takes the plan, holds the
 * operation in the cluster state, and replaces instances with every step recorded in the
 * journal before it is taken.
 *
 * Per instance:
 *   workers  cordon → drain (PDB-aware) → terminate without decrementing the ASG → the
 *            replacement InService and its Node Ready → validate twice
 *   masters  a snapshot first (src/roll/snapshot.ts), then strictly one at a time: the quorum
 *            gate on fresh reports (every member healthy in a report taken after the previous
 *            termination, a leader, quorum holds with this one down) → the snapshot gate (one
 *            at most 60 s old, taken now when needed) → terminate → the old instance `terminated`, the
 *            member's ENI and volume `available` (kops#4128) → claimed by the replacement →
 *            its agent at the current generation and its etcd member healthy → validate twice
 *   bastion  terminate → replacement InService (its host key re-pinned from its console output (commands/roll.ts, ssh/repin.ts))
 *
 * A rerun after an interruption resumes the operation: an instance whose `terminate` step
 * is recorded is never terminated again; its replacement is waited for instead.
 */

export interface RollDeps {
  aws: AwsClients;
  environment: string;
  store: SecretStore;
  state: ClusterStateStore;
  /** the API (workers and masters); bastion rolls need none */
  kube?: KubeApi;
  owner: Owner;
  /** validates the cluster twice (validateLoop with wait and count 2) */
  validate: () => Promise<ValidateResult>;
  isAlive?: (pid: number) => boolean;
  /** etcd snapshots (masters: required; the snapshot gate refuses without a fresh one) */
  backups?: RollBackups;
}

export interface RollOptions {
  layer: RollLayer;
  force: boolean;
  /** workers replaced at once @default 1 (masters: always 1) */
  maxUnavailable: number;
  /** seconds a drain may take @default 900 */
  drainTimeoutS: number;
  /** when a drain times out: stop (fail) or leave the node cordoned and go on (skip) */
  onDrainTimeout: 'fail' | 'skip';
  /** seconds to wait for a replacement (InService, Node Ready, member healthy) @default 900 */
  replaceTimeoutS: number;
  /** seconds between polls while waiting @default 5 */
  pollS: number;
  /** seconds between eviction retries @default 5 */
  evictRetryS: number;
  allowDowngrade: boolean;
  /** aborts the roll (SIGINT): the journal is kept, marked interrupted */
  signal: AbortSignal;
  /** seconds without a step before the heartbeat is refreshed @default 60 */
  heartbeatS?: number;
  /** seconds after which a silent holder may be taken over @default 300 */
  leaseS?: number;
  /**
   * masters: seconds to wait for every master's report to be fresh (taken after the
   * previous termination, within `reportMaxAgeS`) before the quorum gate refuses @default 180
   */
  freshWaitS?: number;
  /** masters: seconds a health report may be old for the quorum gate @default 180 */
  reportMaxAgeS?: number;
}

/** What the roll did. */
export interface RollReport {
  operationId: string;
  resumed: boolean;
  replaced: { old: string; new: string }[];
  /** workers left cordoned because their drain timed out (--on-drain-timeout skip) */
  skipped: { instanceId: string; reason: string }[];
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

function defaultIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The plan as the operator sees it, from the current fleet. */
export async function computeRollPlan(
  aws: AwsClients,
  environment: string,
  layer: RollLayer,
  opts: { force: boolean; leader?: string | null },
): Promise<{ plan: Replacement[]; instances: FleetInstance[] }> {
  const [instances, asgs] = await Promise.all([
    describeFleetInstances(aws, environment),
    describeFleetAsgs(aws, environment),
  ]);
  return { plan: planRoll(layer, instances, asgs, opts), instances };
}

/** The etcd leader's instance id from the masters' reports, when one says so. */
export async function reportedLeader(store: SecretStore): Promise<string | null> {
  for (const [id, s] of await readLayerStatuses(store, 'secure')) if (s.health?.etcd?.isLeader) return id;
  return null;
}

/**
 * Runs the roll: begins (or resumes) the operation, replaces every target, ends it.
 * @throws ConflictError (exit 3) when another operation holds the cluster state, or the
 *   quorum gate refuses a master (naming the member); TimeoutError (exit 5) when a drain
 *   (with --on-drain-timeout fail), a replacement or a validation runs out of time;
 *   AbortError (exit 130) when interrupted — the journal is kept, a rerun resumes
 */
export async function runRoll(d: RollDeps, o: RollOptions, given: Replacement[]): Promise<RollReport> {
  let plan = given;
  const base = await d.state.read();
  // a resumed roll finishes the targets it started with: the plan made now may also list
  // the replacements the interrupted run already launched (with --force every instance is
  // listed), and taking those as targets made them "known", never a replacement to wait for
  const pending = base.state.operation;
  if (pending && pending.kind === 'roll' && pending.layer === o.layer) {
    const later = plan.filter((r) => !pending.targets.includes(r.instanceId));
    if (later.length)
      log.info(
        `not part of the interrupted roll, left for the next one: ${later.map((r) => r.instanceId).join(', ')}`,
      );
    plan = plan.filter((r) => pending.targets.includes(r.instanceId));
  }
  const begun = beginOperation(base.state, {
    kind: 'roll',
    layer: o.layer,
    owner: d.owner,
    targets: plan.map((r) => r.instanceId),
    now: new Date(),
    id: randomUUID(),
    isAlive: d.isAlive ?? defaultIsAlive,
    ...(o.leaseS ? { leaseS: o.leaseS } : {}),
  });
  const first = await d.state.write(base, begun.state, { allowDowngrade: o.allowDowngrade });
  const journal = new JournalWriter(d.state, first, begun.operation.id, d.owner, o.allowDowngrade);
  const id = begun.operation.id;
  if (begun.resumed) {
    const op = begun.operation;
    log.step(
      `resuming roll ${o.layer} (operation ${id}, started ${op.startedAt}): ${op.steps.filter((s) => s.action === 'done').length} of ${op.targets.length} replaced`,
    );
  } else log.step(`roll ${o.layer}: operation ${id}, ${plan.length} instance${plan.length === 1 ? '' : 's'}`);

  const report: RollReport = { operationId: id, resumed: begun.resumed, replaced: [], skipped: [] };
  const hb = setInterval(
    () => void journal.apply((s) => heartbeat(s, id, new Date())).catch(() => {}),
    (o.heartbeatS ?? 60) * 1000,
  );
  hb.unref();
  const step = (instanceId: string, action: StepAction, detail?: string) =>
    journal.apply((s) =>
      recordStep(s, id, { instanceId, action, ...(detail ? { detail } : {}) }, new Date()),
    );
  const op = (): Operation => journal.state.operation!;

  // the targets, in plan order for the new ones; the journal's own order for a resumed operation
  const byId = new Map(plan.map((r) => [r.instanceId, r]));
  const instances = await describeFleetInstances(d.aws, d.environment);
  const targets: Replacement[] = op().targets.map(
    (t) =>
      byId.get(t) ?? {
        instanceId: t,
        name: instances.find((i) => i.instanceId === t)?.name ?? '',
        asg: instances.find((i) => i.instanceId === t)?.asg ?? '',
        availabilityZone: '',
        privateIp: instances.find((i) => i.instanceId === t)?.privateIp ?? null,
        etcdMember: instances.find((i) => i.instanceId === t)?.etcdMember ?? null,
        reasons: ['resumed'],
      },
  );
  const claimed = new Set<string>(Object.values(op().replacements));

  try {
    if (o.layer === 'secure') {
      if (!d.backups) throw new ConflictError('refusing to roll the masters: no access to the etcd backups');
      // the toolkit's snapshot before every roll secure (issue 14 item 3), when it has a route
      const s = await takeRollSnapshot(d.backups, `before roll ${o.layer}`);
      if (s) await journal.apply((st) => recordBackup(st, s));
      else
        log.info(
          'no route to an etcd member (--etcd-via-bastion or --etcd-endpoint): each master waits for a snapshot at most 60 s old',
        );
    }
    const todo = targets.filter((t) => {
      const s = stepsOf(op(), t.instanceId);
      return !s.has('done') && !s.has('drain-skipped');
    });
    const batch = o.layer === 'compute' ? Math.max(1, o.maxUnavailable) : 1;
    for (let i = 0; i < todo.length; i += batch) {
      const chunk = todo.slice(i, i + batch);
      const results = await Promise.all(
        chunk.map((t) => replaceOne(d, o, t, { step, journal, id, claimed, report, op })),
      );
      if (results.some((r) => r === 'replaced')) {
        log.info(`validating ${d.environment} twice`);
        const v = await d.validate();
        if (!v.passed) {
          throw new TimeoutError(
            `after replacing ${chunk.map((c) => c.instanceId).join(', ')} the cluster did not validate within the timeout:\n${v.failures.map((f) => `  ${f.message}`).join('\n')}`,
            { hint: 'fix the failures, then run roll again: it resumes' },
          );
        }
      }
      for (const [k, t] of chunk.entries()) {
        if (results[k] === 'replaced') {
          await step(t.instanceId, 'validated');
          await step(t.instanceId, 'done');
        }
      }
    }
    await journal.apply((s) => finishOperation(s, id, 'completed', new Date()));
    return report;
  } catch (e) {
    const aborted = o.signal.aborted;
    // keep the journal for a rerun, unless someone else holds the operation now
    if (!(e instanceof ConflictError && /taken over|no longer in the cluster state/.test(e.message))) {
      // nothing done yet (e.g. the quorum gate refused the first master): release the operation
      const nothingDone = (journal.state.operation?.steps.length ?? 0) === 0;
      await journal
        .apply((s) =>
          nothingDone ? finishOperation(s, id, 'aborted', new Date()) : interruptOperation(s, id, new Date()),
        )
        .catch((w) => {
          log.warn(`could not mark the operation interrupted: ${(w as Error).message}`);
        });
    }
    if (aborted) {
      throw new AbortError(
        `roll ${o.layer} interrupted; the journal is kept: run roll ${o.layer} again to resume`,
      );
    }
    throw e;
  } finally {
    clearInterval(hb);
  }
}

interface Ctx {
  step: (instanceId: string, action: StepAction, detail?: string) => Promise<void>;
  journal: JournalWriter;
  id: string;
  claimed: Set<string>;
  report: RollReport;
  op: () => Operation;
}

async function waitFor<T>(
  what: string,
  o: RollOptions,
  probe: () => Promise<T | undefined>,
  describe: () => string,
): Promise<T> {
  const deadline = Date.now() + o.replaceTimeoutS * 1000;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() + o.pollS * 1000 > deadline) {
      throw new TimeoutError(`${what}: not within ${o.replaceTimeoutS} s (${describe()})`, {
        hint: 'run roll again once it is fixed: it resumes',
      });
    }
    await sleep(o.pollS * 1000, o.signal);
  }
}

/** Replaces one instance; 'skipped' when its drain timed out with --on-drain-timeout skip. */
async function replaceOne(
  d: RollDeps,
  o: RollOptions,
  target: Replacement,
  c: Ctx,
): Promise<'replaced' | 'skipped'> {
  let t = target;
  const who = `${t.instanceId}${t.name ? ` (${t.name}${t.etcdMember ? `, ${t.etcdMember}` : ''})` : ''}`;
  let steps = stepsOf(c.op(), t.instanceId);
  if (!steps.has('terminate')) {
    const state = await instanceState(d.aws, t.instanceId);
    if (state === 'running' || state === 'pending') {
      if (o.layer === 'secure') await gate(d, o, t, c);
      if (o.layer !== 'bastion' && d.kube) {
        const skipped = await cordonAndDrain(d, o, t, c, who);
        if (skipped) return 'skipped';
      }
      if (o.layer === 'secure') {
        await gate(d, o, t, c); // the drain took time: check again right before
        const g = await snapshotGate(d.backups!, who);
        if (g.taken)
          await c.journal.apply((st) =>
            recordBackup(st, { key: g.snapshot.key, takenAtMs: g.snapshot.takenAtMs }),
          );
        else log.info(`${who}: etcd snapshot ${g.snapshot.key} is fresh (at most 60 s old)`);
      }
      const asgNow = (await describeFleetAsgs(d.aws, d.environment)).find((g) => g.name === t.asg);
      await c.step(
        t.instanceId,
        'terminate',
        JSON.stringify({
          asg: t.asg,
          etcdMember: t.etcdMember,
          before: asgNow?.instances.map((i) => i.instanceId) ?? [],
        }),
      );
      log.info(`${who}: terminating (the ASG ${t.asg} launches its replacement)`);
      await terminateInAsg(d.aws, t.instanceId);
    } else {
      log.info(`${who}: already ${state ?? 'gone'}; waiting for its replacement`);
      await c.step(
        t.instanceId,
        'terminate',
        JSON.stringify({ asg: t.asg, etcdMember: t.etcdMember, before: [], already: state }),
      );
    }
    steps = stepsOf(c.op(), t.instanceId);
  } else {
    log.info(`${who}: its termination is in the journal; not terminating again, waiting for its replacement`);
  }

  const term = c.op().steps.find((s) => s.instanceId === t.instanceId && s.action === 'terminate')!;
  const recorded = JSON.parse(term.detail ?? '{}') as {
    asg?: string;
    before?: string[];
    etcdMember?: string | null;
  };
  // a resumed target is no longer running: what it was is in the journal
  t = { ...t, asg: t.asg || recorded.asg || '', etcdMember: t.etcdMember ?? recorded.etcdMember ?? null };
  const before = new Set<string>(recorded.before ?? []);
  const known = new Set([...before, ...c.op().targets]);

  if (o.layer === 'secure') {
    await waitFor(
      `${who}: the old instance terminated`,
      o,
      async () => ((await instanceState(d.aws, t.instanceId)) === 'terminated' ? true : undefined),
      () => 'still shutting down',
    );
    if (t.etcdMember) {
      const member = t.etcdMember;
      let last = '';
      await waitFor(
        `${who}: the member's ENI and volume released (kops#4128)`,
        o,
        async () => {
          const r = await memberResources(d.aws, d.environment, member);
          last = `ENI ${r.eni?.status ?? 'missing'}${r.eni?.attachedTo ? ` on ${r.eni.attachedTo}` : ''}, volume ${r.volume?.state ?? 'missing'}${r.volume?.attachedTo ? ` on ${r.volume.attachedTo}` : ''}`;
          const eniFree = !r.eni || r.eni.attachedTo !== t.instanceId;
          const volFree = !r.volume || r.volume.attachedTo !== t.instanceId;
          return eniFree && volFree ? true : undefined;
        },
        () => last,
      );
    }
  }

  const existing = c.op().replacements[t.instanceId];
  const newId =
    existing ??
    (await waitFor(
      `${who}: a replacement InService in ${t.asg}`,
      o,
      async () => {
        const g = (await describeFleetAsgs(d.aws, d.environment)).find((x) => x.name === t.asg);
        const fresh = g?.instances.find(
          (i) => i.lifecycle === 'InService' && !known.has(i.instanceId) && !c.claimed.has(i.instanceId),
        );
        return fresh?.instanceId;
      },
      () => 'none launched yet',
    ));
  if (!existing) {
    c.claimed.add(newId);
    await c.journal.apply((s) => recordReplacement(s, c.id, t.instanceId, newId, new Date()));
    log.info(`${who}: replaced by ${newId}`);
  }

  if (o.layer === 'secure' && t.etcdMember) {
    const member = t.etcdMember;
    await waitFor(
      `${who}: ${newId} claimed the member's ENI and volume`,
      o,
      async () => {
        const r = await memberResources(d.aws, d.environment, member);
        const ok = (!r.eni || r.eni.attachedTo === newId) && (!r.volume || r.volume.attachedTo === newId);
        return ok ? true : undefined;
      },
      () => `member ${member}`,
    );
  }
  if (o.layer === 'secure') {
    await waitFor(
      `${who}: ${newId}'s agent at the current generation with its etcd member healthy`,
      o,
      async () => {
        const snap = await d.store.readIndex('secure');
        const gen = snap && snap !== 'not-modified' ? snap.index.generation : 0;
        const s = (await readLayerStatuses(d.store, 'secure')).get(newId);
        return s && s.generation >= gen && !s.error && s.health?.etcd?.healthy ? true : undefined;
      },
      () => 'no healthy report yet',
    );
  }
  if (o.layer !== 'bastion' && d.kube) {
    const kube = d.kube;
    await waitFor(
      `${who}: ${newId}'s Node Ready`,
      o,
      async () => {
        const inst = (await describeFleetInstances(d.aws, d.environment)).find((i) => i.instanceId === newId);
        if (!inst) return undefined;
        const n = nodeOf(
          {
            instanceId: inst.instanceId,
            privateIp: inst.privateIp,
            name: inst.name,
            publicIp: null,
            state: inst.state,
            availabilityZone: inst.availabilityZone,
            layer: inst.layer,
          },
          await kube.listNodes(),
        );
        return n?.ready ? true : undefined;
      },
      () => 'not joined or not Ready',
    );
  }
  await c.step(t.instanceId, 'replaced', newId);
  c.report.replaced.push({ old: t.instanceId, new: newId });
  return 'replaced';
}

async function cordonAndDrain(
  d: RollDeps,
  o: RollOptions,
  t: Replacement,
  c: Ctx,
  who: string,
): Promise<boolean> {
  const kube = d.kube!;
  const node = nodeOf(
    {
      instanceId: t.instanceId,
      privateIp: t.privateIp,
      name: t.name,
      publicIp: null,
      state: 'running',
      availabilityZone: t.availabilityZone,
      layer: o.layer,
    },
    await kube.listNodes(),
  );
  if (!node) {
    log.warn(`${who}: no Node for it (never joined?): nothing to drain`);
    return false;
  }
  await c.step(t.instanceId, 'cordon', node.name);
  await kube.cordon(node.name);
  log.info(`${who}: node ${node.name} cordoned; draining`);
  await c.step(t.instanceId, 'drain', node.name);
  const r = await drainNode(kube, node.name, {
    timeoutS: o.drainTimeoutS,
    retryS: o.evictRetryS,
    signal: o.signal,
    sleep: (ms) => sleep(ms, o.signal),
    onBlocked: (b) =>
      log.warn(
        `${who}: eviction of pod ${b.pod} refused${b.pdb ? ` by PodDisruptionBudget ${b.pdb}` : ''}: ${b.message}; retrying every ${o.evictRetryS} s`,
      ),
  });
  if (r.drained) return false;
  const blocked = r.blocked.map((b) => `${b.pod}${b.pdb ? ` (PDB ${b.pdb})` : ''}`).join(', ');
  if (o.onDrainTimeout === 'skip') {
    const reason = `drain of ${node.name} timed out after ${o.drainTimeoutS} s: ${blocked}; left cordoned`;
    await c.step(t.instanceId, 'drain-skipped', reason);
    c.report.skipped.push({ instanceId: t.instanceId, reason });
    log.warn(`${who}: ${reason}`);
    return true;
  }
  throw new TimeoutError(
    `${who}: drain of node ${node.name} timed out after ${o.drainTimeoutS} s: ${blocked}`,
    {
      hint: '--on-drain-timeout skip leaves such nodes cordoned and goes on; --drain-timeout waits longer',
    },
  );
}

/** The cluster state with `s` as its last backup (when newer than the one recorded). */
function recordBackup(st: ClusterState, s: { key: string; takenAtMs: number }): ClusterState {
  const at = new Date(s.takenAtMs).toISOString();
  if (st.lastBackup && Date.parse(st.lastBackup.at) >= s.takenAtMs) return st;
  return { ...st, lastBackup: { at, key: s.key } };
}

/** The time of the latest termination the operation recorded, other than `target`'s. */
function previousTermination(op: Operation, target: string): Date | null {
  let last: number | null = null;
  for (const s of op.steps) {
    if (s.action !== 'terminate' || s.instanceId === target) continue;
    const at = Date.parse(s.at);
    if (last === null || at > last) last = at;
  }
  return last === null ? null : new Date(last);
}

/**
 * The quorum gate on fresh reports: waits (up to `freshWaitS`) until every running master's
 * report was taken after the previous termination of this operation and within
 * `reportMaxAgeS`, then refuses at once on anything else (an unhealthy member, no leader,
 * quorum lost with `t` down).
 */
async function gate(d: RollDeps, o: RollOptions, t: Replacement, c: Ctx): Promise<void> {
  const notBefore = previousTermination(c.op(), t.instanceId);
  const freshness = { notBefore, maxAgeS: o.reportMaxAgeS ?? 180 };
  const deadline = Date.now() + (o.freshWaitS ?? 180) * 1000;
  let said = false;
  let refusal: string | undefined;
  for (;;) {
    const [statuses, instances] = await Promise.all([
      readLayerStatuses(d.store, 'secure'),
      describeFleetInstances(d.aws, d.environment),
    ]);
    const views = instances
      .filter((i) => i.layer === 'secure' && i.state === 'running')
      .map((m) => ({ instanceId: m.instanceId, member: m.etcdMember, status: statuses.get(m.instanceId) }));
    const now = new Date();
    const old = staleReports(views, now, freshness);
    refusal = quorumGate(views, t.instanceId, now, freshness);
    if (!old.length || Date.now() + o.pollS * 1000 > deadline) break;
    if (!said) {
      log.info(`${t.instanceId}: waiting for fresh etcd health reports (${old.join('; ')})`);
      said = true;
    }
    await sleep(o.pollS * 1000, o.signal);
  }
  if (refusal) {
    throw new ConflictError(`refusing to take down master ${t.instanceId}: ${refusal}`, {
      hint: 'bring every etcd member back to health first; validate names what is wrong',
    });
  }
}
