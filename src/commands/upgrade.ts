import type { CommandContext } from '../context/command.js';
import { secretStore } from '../context/environment.js';
import { UserError } from '../errors.js';
import { exec } from '../exec/index.js';
import { type KubeApi, kubeApiFrom } from '../kube/api.js';
import { log } from '../log.js';
import { secretsDir } from '../paths.js';
import { renderTable } from '../table.js';
import { PreflightError } from '../upgrade/phases.js';
import { type Finding, preflight, type UpgradeTarget } from '../upgrade/skew.js';
import { kubectlVersionFrom, versionsFrom } from '../upgrade/versions.js';
import { loadKubeconfig } from '../validate/run.js';

/** Options of `upgrade`. */
export interface UpgradeOptions {
  env: string;
  local?: boolean;
  /** the target Kubernetes release, vX.Y.Z */
  to: string;
  /** the target etcd release @default the environment's ETCD_VERSION */
  etcd?: string;
  /** kubeconfig file @default secrets/<env>/locked/admin.conf, else the bucket's */
  kubeconfig?: string;
  /** preflight only */
  plan?: boolean;
  json?: boolean;
}

/**
 * The skew findings for upgrading the cluster behind `kube` to `target`: versions from the
 * nodes and the control-plane static pods, kubectl's from `kubectlJson`. Pure but for the API reads.
 */
export async function clusterPreflight(
  kube: KubeApi,
  target: UpgradeTarget,
  kubectlJson?: string,
): Promise<Finding[]> {
  const [nodes, pods] = await Promise.all([kube.listNodes(), kube.listPods()]);
  return preflight(
    versionsFrom(nodes, pods, kubectlJson ? kubectlVersionFrom(kubectlJson) : undefined),
    target,
  );
}

/**
 * `upgrade --to vX.Y.Z --plan`: the preflight of an in-place Kubernetes upgrade against
 * the version-skew policy, from what the cluster runs (src/upgrade/skew.ts). The phases
 * themselves (src/upgrade/phases.ts) are not wired to a command yet: without `--plan` it
 * refuses and says so.
 * @returns 0 when the preflight passes (warnings printed)
 * @throws PreflightError (exit 2) naming each refused rule; UserError (exit 2) for a bad flag
 */
export async function upgradeCommand(o: UpgradeOptions, context: CommandContext): Promise<number> {
  if (!/^v\d+\.\d+\.\d+$/.test(o.to)) throw new UserError(`--to ${o.to}: a release such as v1.35.0`);
  if (o.etcd !== undefined && !/^v\d+\.\d+\.\d+$/.test(o.etcd))
    throw new UserError(`--etcd ${o.etcd}: a release such as v3.6.5`);
  if (!o.plan) {
    throw new UserError('upgrade runs its preflight only in this release: add --plan', {
      hint: 'the phases (API servers by staged rollout, then controllers, then roll compute) follow in a later release',
    });
  }
  const ctx = await context.openEnvironment({ env: o.env, local: o.local, quiet: Boolean(o.json) });
  try {
    const { store } = await secretStore(ctx);
    const kc = await loadKubeconfig(o.kubeconfig, secretsDir(ctx.cfg.name), store);
    const kube = await kubeApiFrom(kc.text);
    const kubectl = await exec('kubectl', ['version', '--client', '-o', 'json'], {
      cwd: process.cwd(),
      reject: false,
    }).catch(() => undefined);
    const target = { kubernetes: o.to, etcd: o.etcd ?? ctx.cfg.etcdVersion };
    log.step(
      `preflight ${ctx.cfg.name} → Kubernetes ${target.kubernetes}, etcd ${target.etcd} (through ${kube.server})`,
    );
    const findings = await clusterPreflight(
      kube,
      target,
      kubectl?.exitCode === 0 ? kubectl.stdout : undefined,
    );
    if (o.json) context.stdout.write(`${JSON.stringify(findings, null, 2)}\n`);
    else if (findings.length)
      context.stdout.write(
        `${await renderTable(
          ['Rule', 'Severity', 'Finding', 'Source'],
          findings.map((f) => [f.rule, f.severity, f.message, f.source]),
        )}\n`,
      );
    const refused = findings.filter((f) => f.severity === 'refuse');
    if (refused.length) throw new PreflightError(refused);
    log.info(`preflight passed${findings.length ? ` with ${findings.length} warning(s)` : ''}`);
    return 0;
  } finally {
    await ctx.close();
  }
}
