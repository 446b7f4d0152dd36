import { readFile } from 'node:fs/promises';
import { bootstrapView } from '../aws/bootstrap.js';
import type { EnvConfig } from '../config/load.js';
import { bootstrapNames } from '../config/topology.js';
import type { CommandContext, ResultSink } from '../context/command.js';
import { PolicyError, UserError } from '../errors.js';
import { log } from '../log.js';
import { displayPath, manifestsTemplateDir, secretsDir } from '../paths.js';
import type { PolicyFile, PolicyInput, PolicyReport } from '../policy/index.js';

/** Options of `policy` (README "policy"). */
export interface PolicyOptions {
  env: string;
  /** a Terraform plan in JSON (`terraform show -json <planfile>`); without it the plan rules are not evaluated */
  planJson?: string;
  /** print the report as JSON on stdout */
  json?: boolean;
  /** list passed and not-evaluated rules too */
  verbose?: boolean;
}

/**
 * Builds the policy input of an environment: the environment, its manifests rendered in
 * memory (nothing written), the bootstrap as it will be, and — when given — a Terraform plan
 * in JSON with the node files decoded from its launch templates.
 *
 * @param plan the parsed `terraform show -json` output, if any
 * @param account the AWS account (for the bucket names) @default AWS_ACCOUNT_ID or "<account>"
 * @param kmsKeyArn the environment key's ARN, when it exists
 * @param manifests the rendered files to evaluate (run's change set passes the ones it would
 *   publish) @default rendered here, with the Kubernetes CA of the working copy's PKI as it is
 *   or as the PKI step would make it (planPki: in memory, nothing written)
 * @throws UserError when the plan JSON is not a plan, or a template fails to render;
 *   IntegrityError (4) from planPki when the working copy's PKI is inconsistent
 */
export async function policyInputFor(
  cfg: EnvConfig,
  opts: { plan?: unknown; account?: string; kmsKeyArn?: string; manifests?: PolicyFile[] } = {},
): Promise<PolicyInput> {
  const { planView, nodeFilesOf } = await import('../policy/index.js');
  const manifests = opts.manifests ?? (await renderForPolicy(cfg));
  const names = bootstrapNames(cfg, opts.account ?? cfg.awsAccountId ?? '<account>');
  const input: PolicyInput = {
    env: cfg,
    manifests,
    bootstrap: bootstrapView(names, opts.kmsKeyArn),
  };
  if (opts.plan !== undefined) {
    const plan = planView(opts.plan);
    input.plan = plan;
    input.nodes = nodeFilesOf(plan);
  }
  return input;
}

/** The environment's manifests rendered in memory, with its PKI's Kubernetes CA (see policyInputFor). */
async function renderForPolicy(cfg: EnvConfig): Promise<PolicyFile[]> {
  const { renderTree, manifestValues } = await import('../manifests/index.js');
  const { planPki, pkiPlanFor } = await import('../secrets/pki/index.js');
  const pki = await planPki(secretsDir(cfg.name), pkiPlanFor(cfg));
  return renderTree(
    manifestsTemplateDir(),
    manifestValues(cfg, { kubernetesCaPem: pki.caCertificates.kubernetes }),
  );
}

/**
 * Prints a report (text on stdout, or JSON with `json`) and, in warn mode with failures, a
 * loud warning on stderr too.
 */
export async function printPolicyReport(
  report: PolicyReport,
  out: ResultSink,
  json?: boolean,
  verbose?: boolean,
): Promise<void> {
  const { formatPolicyReport } = await import('../policy/index.js');
  if (json) out.write(`${JSON.stringify(report, null, 2)}\n`);
  else out.write(formatPolicyReport(report, { verbose: Boolean(verbose) }));
  if (report.mode === 'warn' && report.counts.fail > 0)
    log.warn(
      `${report.environment}: policy rules fail (${report.results
        .filter((r) => r.status === 'fail')
        .map((r) => r.id)
        .join(', ')}): allowed only because this is a play-* environment`,
    );
}

/** Throws when the report refuses the environment. @throws PolicyError (exit 6) */
export function assertPolicy(report: PolicyReport): void {
  if (!report.blocking) return;
  const failed = report.results.filter((r) => r.status === 'fail').map((r) => r.id);
  const unknown = report.unknownWaivers.map((w) => `waiver ${w.ruleId} names no rule`);
  throw new PolicyError(`policy refuses ${report.environment}: ${[...failed, ...unknown].join(', ')}`, {
    hint: 'fix the findings above, or add a waiver with a reason and an expiry to POLICY_WAIVERS in the environment file',
  });
}

/**
 * `policy`: evaluates every rule offline (no AWS call) over the environment, its rendered
 * manifests, the bootstrap settings and, with `--plan-json`, a Terraform plan.
 * @returns 0 when nothing refuses (warn mode always)
 * @throws PolicyError (6) when a rule fails outside play-*; UserError (2) for bad input
 */
export async function policyCommand(o: PolicyOptions, context: CommandContext): Promise<number> {
  const { loadEnvironment } = await import('../config/load.js');
  const { evaluatePolicy } = await import('../policy/index.js');
  const cfg = await loadEnvironment(o.env);
  let plan: unknown;
  if (o.planJson !== undefined) {
    const text = await readFile(o.planJson, 'utf8').catch((e: NodeJS.ErrnoException) => {
      throw new UserError(`${displayPath(o.planJson!)}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
    });
    try {
      plan = JSON.parse(text) as unknown;
    } catch (e) {
      throw new UserError(`${displayPath(o.planJson)}: not JSON (${(e as Error).message})`);
    }
  }
  const input = await policyInputFor(cfg, { plan });
  const report = evaluatePolicy(input, { waivers: cfg.waivers });
  await printPolicyReport(report, context.stdout, o.json, o.verbose);
  assertPolicy(report);
  return 0;
}
