import { RULES } from './rules/index.js';
import type { Finding, PolicyInput, PolicyInputKind, Rule, Severity, Waiver } from './types.js';
import { waiverActive } from './waivers.js';

/**
 * Evaluates the rules over one input (pure, offline). Classes (DESIGN.md §9): a `play-*`
 * environment is in `warn` mode — violations are reported, loudly, and never block; every
 * other environment is in `enforce` mode — any violation blocks the apply. A waiver with
 * a date in the future turns a failed rule into `waived`; an expired waiver does not (the
 * rule stays `fail`, the expired waiver named).
 */

export type RuleStatus = 'pass' | 'fail' | 'waived' | 'not-evaluated';

export interface RuleResult {
  id: string;
  severity: Severity;
  title: string;
  standard: string;
  status: RuleStatus;
  findings: Finding[];
  /** the waiver that applies to the rule (active or expired) */
  waiver?: Waiver & { expired: boolean };
  /** inputs the rule needed but did not get (status not-evaluated) */
  missing?: PolicyInputKind[];
}

export interface PolicyReport {
  environment: string;
  /** warn: play-* (report only); enforce: refuse on any failed rule */
  mode: 'warn' | 'enforce';
  /** evaluation date (UTC ISO) waivers were checked against */
  evaluatedAt: string;
  results: RuleResult[];
  counts: Record<RuleStatus, number>;
  /** waivers naming a rule that does not exist (blocking in enforce mode: a typo waives nothing) */
  unknownWaivers: Waiver[];
  /** true when `run`/`policy` must refuse: enforce mode and a failed rule or an unknown waiver */
  blocking: boolean;
}

export interface EvaluateOptions {
  /** rules to evaluate @default RULES */
  rules?: readonly Rule[];
  /** the waivers of the environment @default [] */
  waivers?: Waiver[];
  /** "today" for waiver expiry @default new Date() */
  now?: Date;
}

function missingInputs(rule: Rule, input: PolicyInput): PolicyInputKind[] {
  return rule.needs.filter((k) => (k === 'env' ? false : input[k] === undefined));
}

/** Runs every rule over `input`. @returns the report; never throws for a violation */
export function evaluatePolicy(input: PolicyInput, opts: EvaluateOptions = {}): PolicyReport {
  const rules = opts.rules ?? RULES;
  const now = opts.now ?? new Date();
  const waivers = opts.waivers ?? [];
  const mode = input.env.name.startsWith('play-') ? 'warn' : 'enforce';
  const results: RuleResult[] = rules.map((rule) => {
    const base = { id: rule.id, severity: rule.severity, title: rule.title, standard: rule.standard };
    const missing = missingInputs(rule, input);
    if (missing.length > 0) return { ...base, status: 'not-evaluated', findings: [], missing };
    const findings = rule.check(input as Required<PolicyInput>);
    if (findings.length === 0) return { ...base, status: 'pass', findings };
    const w = waivers.find((x) => x.ruleId === rule.id);
    if (!w) return { ...base, status: 'fail', findings };
    const expired = !waiverActive(w, now);
    return { ...base, status: expired ? 'fail' : 'waived', findings, waiver: { ...w, expired } };
  });
  const counts: Record<RuleStatus, number> = { pass: 0, fail: 0, waived: 0, 'not-evaluated': 0 };
  for (const r of results) counts[r.status]++;
  const known = new Set(RULES.map((r) => r.id));
  const unknownWaivers = waivers.filter((w) => !known.has(w.ruleId));
  return {
    environment: input.env.name,
    mode,
    evaluatedAt: now.toISOString(),
    results,
    counts,
    unknownWaivers,
    blocking: mode === 'enforce' && (counts.fail > 0 || unknownWaivers.length > 0),
  };
}
