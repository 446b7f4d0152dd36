import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { resolveAmi } from '../aws/ami.js';
import { UserError } from '../errors.js';
import { displayPath, secretsDir, stateDir, terraformDir } from '../paths.js';
import type { Terraform } from '../terraform/driver.js';
import { agentBundle } from './agent-bundle.js';
import type { EnvContext } from './environment.js';

/** An initialised Terraform for one environment, with the variables `run` applies. */
export interface PlatformTerraform {
  tf: Terraform;
  vars: Record<string, unknown>;
  /** where plans of this environment are written (git-ignored .platform/<env>/) */
  planFile: string;
}

/**
 * Builds the platform Terraform of an environment: the driver over platform/terraform
 * with a per-environment data dir, `init` against the S3 backend in the state bucket, and
 * the root variables from the environment file, the bootstrap results and the agent bundle.
 * Shared by `run` (plan/apply) and `cleanup` (destroy) so both see the same inputs.
 *
 * @throws UserError when the environment's SSH public key is missing locally (run, or fetch-secrets)
 */
export async function platformTerraform(ctx: EnvContext, kmsKeyArn: string): Promise<PlatformTerraform> {
  const { cfg } = ctx;
  const pub = path.join(secretsDir(cfg.name), 'common', 'ssh', `${cfg.name}.pub`);
  const sshPublicKey = (
    await readFile(pub, 'utf8').catch(() => {
      throw new UserError(`${displayPath(pub)} is missing`, {
        hint: `fetch-secrets -e ${cfg.name}, or run -e ${cfg.name}`,
      });
    })
  ).trim();
  const amiId = await resolveAmi(ctx.aws, cfg.nodeAmi, Boolean(ctx.aws.settings.endpoint));
  const agent = await agentBundle();
  const { Terraform } = await import('../terraform/driver.js');
  const { tfVars } = await import('../terraform/vars.js');
  const tf = await Terraform.create({
    dir: terraformDir(),
    dataDir: path.join(stateDir(cfg.name), 'terraform'),
    env: ctx.local?.env ?? {},
  });
  await tf.init({
    bucket: ctx.names.stateBucket,
    key: ctx.names.stateKey,
    region: cfg.region,
    ...(ctx.aws.settings.endpoint ? { endpoint: ctx.aws.settings.endpoint } : {}),
  });
  const vars = tfVars(cfg, {
    amiId,
    sshPublicKey,
    secretsBucket: ctx.names.secretsBucket,
    kmsKeyArn,
    agentBucket: ctx.names.stateBucket,
    agentObjectKey: agent.key,
    agentSha256: agent.sha256,
  });
  return { tf, vars, planFile: path.join(stateDir(cfg.name), 'platform.tfplan') };
}
