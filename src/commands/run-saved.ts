import type { ChangeSet } from '../changeset/plan.js';
import type { CommandContext } from '../context/command.js';
import { ConflictError, ExitCode } from '../errors.js';
import { log } from '../log.js';
import { displayPath } from '../paths.js';
import { applyRun, confirmApply, converge, type RunOptions, step } from './run.js';

/**
 * `run --apply FILE`: applies exactly the change set `run --plan --out FILE` saved, or refuses
 * it (README "run", "Saved plans"). In order:
 * 1. decrypt and authenticate FILE (one KMS Decrypt with the saved plan's encryption context);
 * 2. read what it was computed from (reads only): toolkit version, environment file,
 *    bootstrap, the Terraform state object's VersionId, every layer's index, the working
 *    copy, the agent bundle; any difference is a conflict, nothing applied;
 * 3. evaluate the policy again over the saved Terraform plan (a waiver may have expired),
 *    print the change set and the report; a refusal is exit 6;
 * 4. the confirmation `run` asks for;
 * 5. {@link applyRun} with the saved PKI writes, rendered files, layer plans (against the
 *    indexes just read, with conditional writes) and the saved Terraform plan file
 *    (`terraform apply FILE`: Terraform itself refuses it if the state moved meanwhile).
 * @param bytes FILE's content, read before any AWS request
 * @returns 0 (applied, or nothing to apply)
 * @throws IntegrityError (4) for a changed, damaged or foreign FILE; ConflictError (3) for a
 *   stale one (every reason listed); PolicyError (6); UserError (2) without a TTY and --yes;
 *   AbortError (130) when declined; what {@link applyRun} throws
 */
export async function applySavedPlan(
  o: RunOptions,
  context: CommandContext,
  file: string,
  bytes: Buffer,
): Promise<number> {
  const ctx = await context.openEnvironment({ env: o.env, local: o.local });
  const cleanup: (() => Promise<void>)[] = [];
  try {
    const { cfg } = ctx;
    const { environmentState } = await import('../state/open.js');
    const { assertNotDowngrade } = await import('../state/store.js');
    const { toolkitVersion } = await import('../version.js');
    const stateStore = await environmentState(ctx.aws, cfg.name, ctx.names);
    assertNotDowngrade(
      (await stateStore.read()).state,
      toolkitVersion(),
      Boolean(o.allowDowngrade),
      stateStore.where,
    );
    const saved = await import('../changeset/saved.js');
    const { staleReasons } = await import('../changeset/saved-format.js');
    const plan = await step(`open the saved plan ${displayPath(file)}`, async () => {
      const p = await saved.openSavedPlanFile(ctx, file, bytes);
      log.info(`made ${p.createdAt} by kube-platform ${p.inputs.toolkitVersion}`);
      return p;
    });
    const now = await step('check that nothing the plan was computed from has changed', async () => {
      const { secretStore } = await import('../context/environment.js');
      const key = plan.inputs.kmsKeyArn;
      const { store } = await secretStore(ctx, key);
      return saved.currentInputs(ctx, store);
    });
    const stale = staleReasons(plan.inputs, now.inputs);
    if (stale.length)
      throw new ConflictError(`${displayPath(file)} is stale: ${stale.join('; ')}; nothing was applied`, {
        hint: `make a new one: run -e ${cfg.name} --plan --out ${displayPath(file)}`,
      });
    const { evaluatePolicy } = await import('../policy/index.js');
    const { assertPolicy, policyInputFor, printPolicyReport } = await import('./policy.js');
    const planJson = plan.changes.terraform?.planJson;
    const policy = evaluatePolicy(
      await policyInputFor(cfg, {
        ...(planJson !== null && planJson !== undefined ? { plan: planJson } : {}),
        account: ctx.identity.account,
        kmsKeyArn: plan.inputs.kmsKeyArn,
      }),
      { waivers: cfg.waivers },
    );
    const view = saved.changeSetOfSaved(plan, now, policy);
    const { formatChangeSet } = await import('../changeset/format.js');
    const { hasChanges } = await import('../changeset/plan.js');
    context.stdout.write(formatChangeSet(view));
    context.stdout.write('\n## policy\n');
    await printPolicyReport(policy, context.stdout);
    assertPolicy(policy);
    if (!hasChanges(view)) {
      log.step(`${cfg.name}: the saved plan has no changes; nothing to apply`);
      return ExitCode.ok;
    }
    await confirmApply(
      o,
      ctx,
      view,
      `run -e ${cfg.name} --plan`,
      `run -e ${cfg.name} --apply ${displayPath(file)} --yes`,
    );
    let cs: ChangeSet;
    const { terraform, ...rest } = view;
    if (terraform) {
      const extracted = (await saved.extractTerraformPlan(plan))!;
      cleanup.push(extracted.dispose);
      const { platformTerraform } = await import('../context/terraform.js');
      const tf = terraform.summary.changes
        ? await step('terraform init', () =>
            platformTerraform(ctx, {
              kmsKeyArn: plan.inputs.kmsKeyArn,
              sshPublicKey: plan.changes.pki.sshPublicKey,
            }),
          )
        : undefined;
      cs = tf
        ? {
            ...rest,
            terraform: { ...terraform, summary: { ...terraform.summary, planFile: extracted.planFile }, tf },
          }
        : rest;
    } else cs = rest;
    const secureGeneration = await applyRun(ctx, cs, {
      allowDowngrade: Boolean(o.allowDowngrade),
      rollout: o.rollout ?? 'staged',
      rolloutTimeoutS: Number(o.rolloutTimeout ?? 300),
    });
    log.step(`${cfg.name}: the saved plan ${displayPath(file)} was applied`);
    return converge(ctx, o, secureGeneration);
  } finally {
    for (const c of cleanup) await c();
    await ctx.close();
  }
}
