import { ConflictError } from '../errors.js';
import type { ClusterState, JournalStep, Operation, RolloutRecord, StepAction } from './schema.js';

/**
 * The operation journal inside the cluster state (issue 13 item 3), pure: no I/O. A roll
 * records each step here (and writes the state, conditionally) before it takes the step,
 * so a rerun after Ctrl-C or a crash knows what was already done and never terminates an
 * instance twice; the operation doubles as the lock — two operators cannot both hold it,
 * because each start is a conditional write of the same document.
 */

/** Who runs an operation. */
export interface Owner {
  arn: string;
  host: string;
  pid: number;
}

/** Default seconds after which a holder's silent heartbeat lets another rerun take over. */
export const DEFAULT_LEASE_S = 300;

export interface BeginOptions {
  kind: Operation['kind'];
  layer: string;
  owner: Owner;
  /** instance ids to replace (the plan) */
  targets: string[];
  now: Date;
  /** id for a new operation (injected: tests pass a fixed one) */
  id: string;
  /** seconds without heartbeat after which the holder is presumed gone @default 300 */
  leaseS?: number;
  /** whether process `pid` is alive on this host (process.kill(pid, 0)); injected for tests */
  isAlive: (pid: number) => boolean;
}

/**
 * Whether the holder of `op` is gone: the operation was interrupted (Ctrl-C recorded it),
 * or its process ran on this host and is no longer alive, or its heartbeat is older than
 * the lease.
 */
export function holderGone(
  op: Operation,
  o: Pick<BeginOptions, 'owner' | 'now' | 'leaseS' | 'isAlive'>,
): boolean {
  if (op.interruptedAt) return true;
  if (op.owner.host === o.owner.host && op.owner.pid !== o.owner.pid && !o.isAlive(op.owner.pid)) return true;
  const age = (o.now.getTime() - Date.parse(op.heartbeatAt)) / 1000;
  return age > (o.leaseS ?? DEFAULT_LEASE_S);
}

/**
 * Starts an operation, or resumes the interrupted one of the same kind and layer.
 *
 * A resumed operation keeps its steps and targets (the new plan's targets are added: an
 * instance already terminated is no longer in the plan, but its journal entry stays).
 *
 * @returns the state to write and whether it resumed
 * @throws ConflictError (exit 3) when another operation is in progress and its holder is
 *   alive, naming it, who holds it and its last heartbeat
 */
export function beginOperation(
  state: ClusterState,
  o: BeginOptions,
): { state: ClusterState; resumed: boolean; operation: Operation } {
  const now = o.now.toISOString();
  const op = state.operation;
  if (op) {
    const gone = holderGone(op, o);
    const same = op.kind === o.kind && op.layer === o.layer;
    if (!gone || !same) {
      const age = Math.round((o.now.getTime() - Date.parse(op.heartbeatAt)) / 1000);
      throw new ConflictError(
        `${op.kind} ${op.layer} (operation ${op.id}) is in progress: started ${op.startedAt} by ${op.owner.arn} on ${op.owner.host} (pid ${op.owner.pid}), last heartbeat ${age} s ago`,
        {
          hint: same
            ? 'wait for it to finish; if its holder is gone, a rerun resumes it once the heartbeat is older than the lease'
            : `finish it first: ${op.kind} ${op.layer}`,
        },
      );
    }
    const resumed: Operation = {
      ...op,
      owner: o.owner,
      heartbeatAt: now,
      interruptedAt: null,
      targets: [...new Set([...op.targets, ...o.targets])],
    };
    return { state: { ...state, operation: resumed }, resumed: true, operation: resumed };
  }
  const fresh: Operation = {
    id: o.id,
    kind: o.kind,
    layer: o.layer,
    owner: o.owner,
    startedAt: now,
    heartbeatAt: now,
    targets: o.targets,
    replacements: {},
    steps: [],
    interruptedAt: null,
  };
  return { state: { ...state, operation: fresh }, resumed: false, operation: fresh };
}

/**
 * The operation `id` in `state`, or a ConflictError when someone else took it over (their
 * rerun found our heartbeat stale): this process must stop at once.
 */
export function ownOperation(state: ClusterState, id: string): Operation {
  const op = state.operation;
  if (!op || op.id !== id) {
    throw new ConflictError(
      `operation ${id} is no longer in the cluster state: another operator took it over or ended it`,
    );
  }
  return op;
}

/** Appends a step (recorded before it is taken) and refreshes the heartbeat. */
export function recordStep(
  state: ClusterState,
  id: string,
  step: { instanceId: string; action: StepAction; detail?: string },
  now: Date,
): ClusterState {
  const op = ownOperation(state, id);
  const entry: JournalStep = { ...step, at: now.toISOString() };
  return { ...state, operation: { ...op, heartbeatAt: entry.at, steps: [...op.steps, entry] } };
}

/** Records that `oldId`'s replacement is `newId`. */
export function recordReplacement(
  state: ClusterState,
  id: string,
  oldId: string,
  newId: string,
  now: Date,
): ClusterState {
  const op = ownOperation(state, id);
  return {
    ...state,
    operation: {
      ...op,
      heartbeatAt: now.toISOString(),
      replacements: { ...op.replacements, [oldId]: newId },
    },
  };
}

/** Refreshes the heartbeat only. */
export function heartbeat(state: ClusterState, id: string, now: Date): ClusterState {
  const op = ownOperation(state, id);
  return { ...state, operation: { ...op, heartbeatAt: now.toISOString() } };
}

/** Marks the operation interrupted (Ctrl-C): the journal stays, a rerun resumes at once. */
export function interruptOperation(state: ClusterState, id: string, now: Date): ClusterState {
  const op = ownOperation(state, id);
  return { ...state, operation: { ...op, interruptedAt: now.toISOString(), heartbeatAt: now.toISOString() } };
}

/** The actions recorded for one instance. */
export function stepsOf(op: Operation, instanceId: string): Set<StepAction> {
  return new Set(op.steps.filter((s) => s.instanceId === instanceId).map((s) => s.action));
}

/** The instances whose termination was recorded (so never to be terminated again). */
export function terminated(op: Operation): Set<string> {
  return new Set(op.steps.filter((s) => s.action === 'terminate').map((s) => s.instanceId));
}

/**
 * Ends the operation: the journal is cleared and summarised in `lastRollout`.
 */
export function finishOperation(
  state: ClusterState,
  id: string,
  result: RolloutRecord['result'],
  now: Date,
): ClusterState {
  const op = ownOperation(state, id);
  const done = [...new Set(op.steps.filter((s) => s.action === 'done').map((s) => s.instanceId))];
  const skipped = [...new Set(op.steps.filter((s) => s.action === 'drain-skipped').map((s) => s.instanceId))];
  return {
    ...state,
    operation: null,
    lastRollout: {
      at: now.toISOString(),
      operationId: op.id,
      layer: op.layer,
      result,
      replaced: done,
      skipped,
    },
  };
}
