import { ConflictError, PlatformError, UserError } from '../errors.js';
import { type ClusterVersions, type Finding, preflight, type UpgradeTarget } from './skew.js';

/**
 * The `upgrade --to` phase runner (issue 14 item 2), in the order the version-skew policy
 * requires (https://kubernetes.io/releases/version-skew-policy/#supported-component-upgrade-order):
 *
 *   1. preflight        the skew rules (skew.ts); any refusal stops here, nothing changed
 *   2. snapshot         an etcd snapshot (src/backup/) before the control plane changes
 *   3. etcd             etcd to the paired version, one master at a time (staged rollout),
 *                       only when the target's etcd differs from what the members run
 *   4. apiservers       kube-apiserver on every master, one at a time (staged rollout)
 *   5. validate
 *   6. controllers      kube-controller-manager and kube-scheduler (never newer than any
 *                       API server: they move only after every API server did)
 *   7. validate
 *   8. workers          `roll compute` onto the target kubelet (a kubelet minor upgrade
 *                       needs a drain: in-place kubelet minor upgrades are unsupported)
 *   9. validate
 *
 * Every phase is recorded in the journal before it starts and after it ends, so an
 * interrupted upgrade resumes at the first phase not recorded done; a phase that had
 * started is run again (each is idempotent: a staged rollout to a generation already
 * complete does nothing, `roll compute` skips instances already on the target).
 *
 * The runner talks to the rest of the toolkit through {@link UpgradeDeps} only, so that it
 * is tested with fakes; wiring to the cluster state, `validate` and `roll compute` is in
 * src/commands/upgrade.ts.
 */

export const PHASES = [
  'preflight',
  'snapshot',
  'etcd',
  'apiservers',
  'validate-apiservers',
  'controllers',
  'validate-controllers',
  'workers',
  'validate-workers',
] as const;
export type Phase = (typeof PHASES)[number];

/** What the journal keeps of an upgrade. */
export interface UpgradeJournal {
  target: UpgradeTarget;
  /** phases done, in order */
  done: Phase[];
  /** the phase that started and did not finish, if any */
  started: Phase | null;
}

/** The narrow interfaces the runner needs. */
export interface UpgradeDeps {
  /** what runs now (API servers from the static pods' images, kubelets from the nodes, etcd from the agents) */
  versions(): Promise<ClusterVersions>;
  /** the journal of the upgrade in progress (the cluster state's operation), or null */
  loadJournal(): Promise<UpgradeJournal | null>;
  /** writes the journal (a conditional write of the cluster state); null: no upgrade in progress */
  saveJournal(j: UpgradeJournal | null): Promise<void>;
  /** takes an etcd snapshot and returns its key */
  snapshot(): Promise<string>;
  /** publishes the component's new manifest as a staged rollout and waits until every master is healthy on it */
  rolloutControlPlane(
    components: ('etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler')[],
    target: UpgradeTarget,
  ): Promise<void>;
  /** replaces the workers onto the target kubelet (roll compute) */
  rollWorkers(target: UpgradeTarget): Promise<void>;
  /** validate: passes or names its failures */
  validate(): Promise<{ passed: boolean; failures: string[] }>;
  /** progress lines */
  log(line: string): void;
}

/** The result of a run. */
export interface UpgradeResult {
  /** phases run by this invocation (a resumed upgrade skips the ones done before) */
  ran: Phase[];
  skipped: Phase[];
  warnings: Finding[];
  resumed: boolean;
}

/** Thrown when preflight refuses: exit 2, every refused rule named with its source. */
export class PreflightError extends UserError {
  readonly findings: Finding[];
  constructor(findings: Finding[]) {
    super(
      `upgrade refused by the version-skew policy:\n${findings
        .map((f) => `  [${f.rule}] ${f.message} (${f.source})`)
        .join('\n')}`,
    );
    this.findings = findings;
  }
}

/**
 * Refuses a `run` while an upgrade is unfinished: the environment file still names the
 * versions the upgrade started from, and rendering them would move the components already
 * upgraded back (src/upgrade/stage.ts). Pure.
 * @param upgrade the cluster state's `upgrade` record (undefined/null: none)
 * @throws ConflictError (exit 3) naming the target and the phases done
 */
export function assertNoUpgradeInProgress(
  upgrade: { target: UpgradeTarget; done: string[]; started: string | null } | null | undefined,
): void {
  if (!upgrade || upgrade.done.length >= PHASES.length) return;
  throw new ConflictError(
    `an upgrade to ${upgrade.target.kubernetes} is in progress (done: ${upgrade.done.join(', ') || 'nothing'}${upgrade.started ? `; stopped in ${upgrade.started}` : ''}): run would render the versions it started from`,
    { hint: `finish it first: upgrade --to ${upgrade.target.kubernetes} resumes where it stopped` },
  );
}

/** Who runs an upgrade: the AWS identity, the host and the process. */
export interface UpgradeOwner {
  arn: string;
  host: string;
  pid: number;
}

/**
 * Whether another process holds the unfinished upgrade `record`, as a roll's operation is
 * held (src/state/journal.ts holderGone): a holder on this host whose process is gone, or
 * whose heartbeat is older than `leaseS`, has let go. Pure.
 * @returns why it is held (to name in the refusal), or undefined when `me` may run it
 */
export function heldByOther(
  record: { done: string[]; owner?: UpgradeOwner; heartbeatAt?: string } | null | undefined,
  me: UpgradeOwner,
  now: Date,
  isAlive: (pid: number) => boolean,
  leaseS = 300,
): string | undefined {
  if (!record?.owner || record.done.length >= PHASES.length) return undefined;
  const o = record.owner;
  if (o.host === me.host && o.pid === me.pid) return undefined;
  if (o.host === me.host && !isAlive(o.pid)) return undefined;
  const age = record.heartbeatAt ? (now.getTime() - Date.parse(record.heartbeatAt)) / 1000 : Infinity;
  if (age > leaseS) return undefined;
  return `held by ${o.arn} on ${o.host} (pid ${o.pid}), last heartbeat ${Math.round(age)} s ago`;
}

/**
 * The phases still to run for `target`, given the journal. Pure.
 * @throws ConflictError when the journal holds an unfinished upgrade to another target
 */
export function remainingPhases(journal: UpgradeJournal | null, target: UpgradeTarget): Phase[] {
  if (!journal || journal.done.length === PHASES.length) return [...PHASES];
  if (journal.target.kubernetes !== target.kubernetes || journal.target.etcd !== target.etcd) {
    throw new ConflictError(
      `an upgrade to ${journal.target.kubernetes} (etcd ${journal.target.etcd}) is in progress (done: ${journal.done.join(', ') || 'nothing'})`,
      { hint: `finish it first: upgrade --to ${journal.target.kubernetes}` },
    );
  }
  const done = new Set(journal.done);
  return PHASES.filter((p) => !done.has(p));
}

/**
 * Runs (or resumes) the upgrade to `target`.
 * @throws PreflightError (exit 2) when a skew rule refuses; PlatformError naming the phase
 *   when validate fails between phases (the journal keeps the phase as started, a rerun
 *   resumes there); ConflictError for another upgrade in progress
 */
export async function runUpgrade(deps: UpgradeDeps, target: UpgradeTarget): Promise<UpgradeResult> {
  const journal = await deps.loadJournal();
  const todo = remainingPhases(journal, target);
  const resumed = todo.length < PHASES.length;
  const j: UpgradeJournal = resumed
    ? { ...journal!, done: [...journal!.done] }
    : { target, done: [], started: null };
  const result: UpgradeResult = {
    ran: [],
    skipped: PHASES.filter((p) => !todo.includes(p)),
    warnings: [],
    resumed,
  };
  let current: ClusterVersions | undefined;
  for (const phase of todo) {
    j.started = phase;
    await deps.saveJournal(j);
    deps.log(`upgrade ${target.kubernetes}: ${phase}`);
    switch (phase) {
      case 'preflight': {
        current = await deps.versions();
        const findings = preflight(current, target);
        const refusals = findings.filter((f) => f.severity === 'refuse');
        result.warnings = findings.filter((f) => f.severity === 'warn');
        for (const w of result.warnings) deps.log(`warning: [${w.rule}] ${w.message}`);
        if (refusals.length) {
          // nothing changed yet: leave no journal behind
          await deps.saveJournal(null);
          throw new PreflightError(refusals);
        }
        break;
      }
      case 'snapshot':
        deps.log(`etcd snapshot ${await deps.snapshot()}`);
        break;
      case 'etcd': {
        current ??= await deps.versions();
        if (current.etcdMembers.every((v) => v === target.etcd)) {
          deps.log(`etcd already runs ${target.etcd} on every member`);
        } else {
          await deps.rolloutControlPlane(['etcd'], target);
        }
        break;
      }
      case 'apiservers':
        await deps.rolloutControlPlane(['kube-apiserver'], target);
        break;
      case 'controllers':
        await deps.rolloutControlPlane(['kube-controller-manager', 'kube-scheduler'], target);
        break;
      case 'workers':
        await deps.rollWorkers(target);
        break;
      default: {
        const v = await deps.validate();
        if (!v.passed) {
          throw new PlatformError(
            `upgrade ${target.kubernetes} stopped at ${phase}: ${v.failures.join('; ')}`,
            {
              hint: `fix what validate names, then run upgrade --to ${target.kubernetes} again: it resumes at ${phase}`,
            },
          );
        }
      }
    }
    j.done.push(phase);
    j.started = null;
    await deps.saveJournal(j);
    result.ran.push(phase);
  }
  return result;
}
