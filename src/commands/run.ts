import { bootstrap } from '../aws/bootstrap.js';
import { publishAgent } from '../context/agent-bundle.js';
import { openEnvironment, secretStore } from '../context/environment.js';
import { platformTerraform } from '../context/terraform.js';
import { TimeoutError, UserError } from '../errors.js';
import { log } from '../log.js';
import { displayPath, manifestsTemplateDir, secretsDir } from '../paths.js';
import { confirmOrAbort } from '../prompt.js';
import { LAYERS } from '../secrets/layers.js';
import { readLayerDir } from '../secrets/local.js';
import { readIndexForPublish, readSeen, recordSeen } from '../secrets/seen.js';

/** Options of `run` (README "run"). */
export interface RunOptions {
  env: string;
  local?: boolean;
  /** apply without asking */
  yes?: boolean;
  /** stop after showing the plan */
  plan?: boolean;
  /** bootstrap, PKI, render and publish only */
  skipTerraform?: boolean;
  /** wait until every master's agent applied the published secure generation */
  wait?: boolean;
  /** seconds --wait waits @default 300 */
  waitTimeout?: string | number;
}

/** Times a step and prints it as progress on stderr: `==> name` … `    done in 1.2 s`. */
async function step<T>(name: string, fn: () => Promise<T>): Promise<T> {
  log.step(name);
  const t0 = performance.now();
  const r = await fn();
  log.info(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return r;
}

/**
 * `run`: bootstrap → PKI → render manifests → publish → terraform init/plan/apply.
 *
 * Order matters for safety: the environment file is validated before anything is created
 * (exit 2), and every local artefact is rendered before anything is uploaded, so a bad
 * template uploads nothing.
 * @returns exit code 0
 * @throws AbortError (130) when the operator declines the plan; UserError (2) without a TTY and without --yes
 */
export async function runCommand(o: RunOptions): Promise<number> {
  if (!o.yes && !o.plan && !o.skipTerraform && !process.stdin.isTTY) {
    throw new UserError('run would ask before applying, but stdin is not a terminal', {
      hint: `review with: run -e ${o.env} --plan; apply non-interactively with: run -e ${o.env} --yes`,
    });
  }
  const ctx = await openEnvironment({ env: o.env, local: o.local });
  try {
    const { cfg } = ctx;
    const secrets = secretsDir(cfg.name);
    // Render first, in memory: a bad template fails here, before anything is created.
    const rendered = await step(`render ${displayPath(manifestsTemplateDir())}`, async () => {
      const { renderTree, manifestValues } = await import('../manifests/index.js');
      const files = await renderTree(manifestsTemplateDir(), manifestValues(cfg));
      log.info(`${files.length} files`);
      return files;
    });
    // Policy before anything is written: the environment, the manifests and the bootstrap
    // settings now; the Terraform plan's rules again before the apply.
    const { evaluatePolicy } = await import('../policy/index.js');
    const { assertPolicy, policyInputFor, printPolicyReport } = await import('./policy.js');
    const pre = evaluatePolicy(await policyInputFor(cfg, { account: ctx.identity.account }), {
      waivers: cfg.waivers,
    });
    if (pre.blocking) {
      await printPolicyReport(pre);
      assertPolicy(pre);
    }
    const boot = await step('bootstrap: KMS key, state bucket, secrets bucket', () =>
      bootstrap(ctx.aws, ctx.names, cfg.name),
    );
    if (boot.changed.length === 0) log.info('already in place');

    const pki = await step(`PKI and kubeconfigs in ${displayPath(secrets)}`, async () => {
      const { ensurePki, pkiPlanFor } = await import('../secrets/pki/index.js');
      return ensurePki(secrets, pkiPlanFor(cfg));
    });
    log.info(`${pki.created.length} created, ${pki.kept.length} kept`);
    for (const e of pki.expiring)
      log.warn(`${e.path} expires in ${e.daysLeft} days (${e.notAfter.toISOString()})`);

    await step(`write manifests into ${displayPath(secrets)}`, async () => {
      const { writeRendered } = await import('../manifests/index.js');
      const w = await writeRendered(secrets, rendered);
      log.info(`${w.written.length} written, ${w.unchanged.length} unchanged`);
    });

    const { store, keys } = await secretStore(ctx, boot.kmsKeyArn);
    let secureGeneration = 0;
    await step(`publish to s3://${ctx.names.secretsBucket}`, async () => {
      // every layer's files are uploaded before any index is written: a conflict on the
      // first index write publishes nothing
      // (local files and every index are checked before the first upload)
      const local = [];
      for (const layer of LAYERS) {
        const files = await readLayerDir(secrets, layer);
        if (files.length > 0) local.push({ layer, files });
      }
      const seen = await readSeen(secrets);
      const bases = [];
      for (const { layer } of local) bases.push(await readIndexForPublish(store, layer, seen));
      const prepared = [];
      for (const [i, { layer, files }] of local.entries())
        prepared.push(await store.prepare(layer, files, { base: bases[i] ?? null }));
      for (const p of prepared) {
        const r = p.next ? await store.commit(p) : p.result;
        if (r.generation > 0) await recordSeen(secrets, { [r.layer]: r.generation });
        if (r.layer === 'secure') secureGeneration = r.generation;
        const plan = r.plan;
        log.info(
          `${r.layer}: generation ${r.generation}${r.published ? '' : ' (unchanged)'}: ${plan.added.length} added, ${plan.changed.length} changed, ${plan.removed.length} removed, ${plan.unchanged.length} unchanged`,
        );
      }
      log.info(`${store.puts} PutObject, ${keys.requests} KMS requests`);
    });

    await step('publish the manifest-sync agent', () => publishAgent(ctx, boot.kmsKeyArn));

    const converge = async (): Promise<number> => {
      if (!o.wait) return 0;
      const timeoutS = Number(o.waitTimeout ?? 300);
      if (!Number.isFinite(timeoutS) || timeoutS <= 0)
        throw new UserError(`--wait-timeout ${o.waitTimeout}: must be seconds > 0`);
      const { listInstances } = await import('../aws/inventory.js');
      const { waitForConvergence, formatConvergence } = await import('../fleet/convergence.js');
      log.step(
        `waiting for the masters to apply secure generation ${secureGeneration} (up to ${timeoutS} s)`,
      );
      const r = await waitForConvergence({
        store,
        instances: await listInstances(ctx.aws, cfg.name),
        layer: 'secure',
        generation: secureGeneration,
        timeoutS,
      });
      if (r.converged < r.total) throw new TimeoutError(formatConvergence(r));
      log.step(formatConvergence(r));
      return 0;
    };

    if (o.skipTerraform) return converge();
    const { tf, vars, planFile } = await step('terraform init', () => platformTerraform(ctx, boot.kmsKeyArn));
    const summary = await step('terraform plan', () => tf.plan(vars, planFile));
    const report = evaluatePolicy(
      await policyInputFor(cfg, {
        plan: await tf.showJson(planFile),
        account: ctx.identity.account,
        kmsKeyArn: boot.kmsKeyArn,
      }),
      { waivers: cfg.waivers },
    );
    await printPolicyReport(report);
    assertPolicy(report);
    if (!summary.changes) {
      log.step('terraform: no changes; the platform is up to date');
      return converge();
    }
    log.step(`plan: ${summary.add} to add, ${summary.change} to change, ${summary.destroy} to destroy`);
    if (o.plan) return 0;
    if (!o.yes) {
      await confirmOrAbort(
        `apply this plan to ${cfg.name} (account ${ctx.identity.account})?`,
        `review with: run -e ${cfg.name} --plan; apply non-interactively with: run -e ${cfg.name} --yes`,
      );
    }
    await step('terraform apply', () => tf.apply(planFile));
    return converge();
  } finally {
    await ctx.close();
  }
}
