import { cp, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { type EnvConfig, parseEnvironment } from '../../src/config/load.js';
import { exec } from '../../src/exec/index.js';
import { terraformDir, toolkitRoot } from '../../src/paths.js';
import { tfVars } from '../../src/terraform/vars.js';

/** The cloud-init user data of each node role, as EC2 receives it (before gzip). */
export type UserData = Record<'masters' | 'workers' | 'bastion', string>;

/** The account the rendered user data is for (its KMS key's; moto's default account). */
export const RENDER_ACCOUNT = '123456789012';

/** One entry of a cloud-config's write_files. */
export interface WriteFile {
  path: string;
  permissions: string;
  content: string;
}

/**
 * Renders platform/terraform's `local.user_data` with the real terraform from the real
 * templates and variables (user-data.tf and variables.tf beside an output; no provider),
 * for environments/play.env with `envText` appended (extra keys).
 * @returns the user data of each role, as EC2 receives it (before compression)
 */
export async function renderUserData(
  work: string,
  envText = '',
): Promise<{ cfg: EnvConfig; userData: Record<'masters' | 'workers' | 'bastion', string> }> {
  const dir = path.join(work, 'tf');
  await mkdir(dir, { recursive: true });
  for (const f of ['variables.tf', 'user-data.tf']) await cp(path.join(terraformDir(), f), path.join(dir, f));
  await cp(path.join(terraformDir(), 'templates'), path.join(dir, 'templates'), { recursive: true });
  await writeFile(path.join(dir, 'outputs.tf'), 'output "user_data" {\n  value = local.user_data\n}\n');
  const cfg = parseEnvironment(
    'play-ci',
    (await readFile(path.join(toolkitRoot(), 'environments', 'play.env'), 'utf8')) + envText,
    'environments/play.env',
  );
  const sha = 'ab'.repeat(32);
  const vars = tfVars(cfg, {
    amiId: 'ami-0123456789abcdef0',
    sshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIC1tZXJlbHktdGhlLXJlbmRlcmluZy10ZXN0LWtleQ play-ci',
    secretsBucket: 'kp-play-ci-123456789012-eu-west-1-secrets',
    kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/01234567-89ab-cdef-0123-456789abcdef',
    agentBucket: 'kp-play-ci-123456789012-eu-west-1-state',
    agentObjectKey: `agent/manifest-sync-${sha}.mjs`,
    agentSha256: sha,
  });
  await writeFile(path.join(dir, 'terraform.tfvars.json'), JSON.stringify(vars));
  await writeFile(path.join(dir, 'cli.tfrc'), '');
  const env = {
    TF_CLI_CONFIG_FILE: path.join(dir, 'cli.tfrc'),
    TF_IN_AUTOMATION: '1',
    CHECKPOINT_DISABLE: '1',
  };
  await exec('terraform', ['init', '-input=false', '-no-color'], { cwd: dir, env });
  await exec('terraform', ['apply', '-auto-approve', '-input=false', '-no-color'], { cwd: dir, env });
  const out = await exec('terraform', ['output', '-json', 'user_data'], { cwd: dir, env });
  return { cfg, userData: JSON.parse(out.stdout) };
}
