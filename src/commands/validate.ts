import type { CommandContext, ResultSink } from '../context/command.js';
import { secretStore } from '../context/environment.js';
import { TimeoutError, UserError } from '../errors.js';
import { kubeApiFrom } from '../kube/api.js';
import { log } from '../log.js';
import { secretsDir } from '../paths.js';
import { environmentState } from '../state/open.js';
import type { ClusterState } from '../state/schema.js';
import type { ClusterStateStore } from '../state/store.js';
import { renderTable } from '../table.js';
import type { Failure } from '../validate/checks.js';
import {
  attemptValidation,
  collectSnapshot,
  loadKubeconfig,
  UnhealthyError,
  type ValidateResult,
  validateLoop,
} from '../validate/run.js';

/** Options of `validate`. */
export interface ValidateOptions {
  env: string;
  local?: boolean;
  /** kubeconfig file @default secrets/<env>/locked/admin.conf, else the bucket's */
  kubeconfig?: string;
  /** keep validating until `count` consecutive passes or `timeout` */
  wait?: boolean;
  /** consecutive passes needed with --wait @default 2 */
  count: string | number;
  /** seconds between validations @default 10 */
  interval: string | number;
  /** seconds --wait waits @default 900 */
  timeout: string | number;
  json?: boolean;
}

/** Parsed numbers of {@link ValidateOptions}. */
export interface ValidateNumbers {
  count: number;
  intervalS: number;
  timeoutS: number;
}

/**
 * Normalises --count, --interval and --timeout.
 * @throws UserError (exit 2) naming the flag
 */
export function validateNumbers(o: Pick<ValidateOptions, 'count' | 'interval' | 'timeout'>): ValidateNumbers {
  const count = Number(o.count);
  if (!Number.isInteger(count) || count < 1 || count > 100) {
    throw new UserError(`--count ${o.count}: must be a whole number from 1 to 100`);
  }
  const intervalS = Number(o.interval);
  if (!Number.isFinite(intervalS) || intervalS <= 0 || intervalS > 3600) {
    throw new UserError(`--interval ${o.interval}: must be a number of seconds above 0, at most 3600`);
  }
  const timeoutS = Number(o.timeout);
  if (!Number.isFinite(timeoutS) || timeoutS <= 0 || timeoutS > 86_400) {
    throw new UserError(`--timeout ${o.timeout}: must be a number of seconds above 0, at most 86400`);
  }
  return { count, intervalS, timeoutS };
}

/** Records the outcome as the cluster state's lastValidation; a refusal only warns. */
export async function recordValidation(stateStore: ClusterStateStore, r: ValidateResult): Promise<void> {
  try {
    await stateStore.update(
      (s: ClusterState) => ({
        ...s,
        lastValidation: {
          at: new Date().toISOString(),
          passed: r.passed,
          failures: r.failures.map((f) => f.message),
        },
      }),
      { retries: 3 },
    );
  } catch (e) {
    log.warn(`the result was not recorded in the cluster state: ${(e as Error).message}`);
  }
}

/**
 * `validate`: is the cluster healthy, not just synced? Every ASG at its desired count,
 * every instance joined as a Ready Node with its network, every master running its four
 * control-plane pods, every critical pod Ready, every etcd member healthy with one leader
 * and one version (from each master's own report), every master's agent at the current
 * generation, every certificate valid for 30 more days, versions within the skew policy.
 *
 * Without --wait: one validation. With --wait: until --count consecutive passes,
 * --interval seconds apart, or --timeout. An unreachable API is said at once.
 * Failures go to stdout (table or --json), progress to stderr; the outcome is recorded in
 * the cluster state.
 * @returns 0 when healthy
 * @throws UnhealthyError (exit 5) naming every failure; TimeoutError (exit 5) when --wait
 *   ran out of time; UserError (exit 2) for a bad flag
 */
export async function validateCommand(o: ValidateOptions, context: CommandContext): Promise<number> {
  const n = validateNumbers(o);
  const ctx = await context.openEnvironment({ env: o.env, local: o.local, quiet: Boolean(o.json) });
  try {
    const { store } = await secretStore(ctx);
    const stateStore = await environmentState(ctx.aws, ctx.cfg.name, ctx.names);
    const state = (await stateStore.read()).state;
    const kc = await loadKubeconfig(o.kubeconfig, secretsDir(ctx.cfg.name), store);
    const kube = await kubeApiFrom(kc.text);
    log.step(`validate ${ctx.cfg.name} through ${kube.server} (kubeconfig ${kc.from})`);
    const r = await validateLoop({
      wait: Boolean(o.wait),
      ...n,
      attempt: () =>
        attemptValidation(() =>
          collectSnapshot({ aws: ctx.aws, environment: ctx.cfg.name, store, kube, state }),
        ),
      onAttempt: ({ attempt, failures, consecutive }) =>
        log.info(
          failures.length
            ? `attempt ${attempt}: ${failures.length} failure${failures.length > 1 ? 's' : ''}: ${failures[0]!.message}${failures.length > 1 ? ' …' : ''}`
            : `attempt ${attempt}: healthy (${consecutive}/${o.wait ? n.count : 1})`,
        ),
    });
    await recordValidation(stateStore, r);
    await printResult(r, Boolean(o.json), context.stdout);
    if (r.passed) {
      log.info(
        `${ctx.cfg.name} is healthy (${r.attempts} validation${r.attempts > 1 ? 's' : ''}, ${r.elapsedS.toFixed(1)} s)`,
      );
      return 0;
    }
    const list = r.failures.map((f) => `  ${f.message}`).join('\n');
    if (r.timedOut) {
      throw new TimeoutError(
        `${ctx.cfg.name} did not validate within ${n.timeoutS} s (${r.attempts} validations):\n${list}`,
      );
    }
    throw new UnhealthyError(`${ctx.cfg.name} is not healthy:\n${list}`, {
      hint: o.wait ? undefined : 'validate --wait waits for it to become healthy',
    });
  } finally {
    await ctx.close();
  }
}

async function printResult(r: ValidateResult, json: boolean, out: ResultSink): Promise<void> {
  if (json) {
    out.write(
      `${JSON.stringify({ passed: r.passed, attempts: r.attempts, timedOut: r.timedOut, failures: r.failures }, null, 2)}\n`,
    );
    return;
  }
  if (!r.failures.length) return;
  out.write(
    `${await renderTable(
      ['Check', 'Subject', 'Failure'],
      r.failures.map((f: Failure) => [f.check, f.subject, f.message]),
    )}\n`,
  );
}
