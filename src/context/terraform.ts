import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { resolveAmi } from '../aws/ami.js';
import { UserError } from '../errors.js';
import { log } from '../log.js';
import { displayPath, secretsDir, stateDir, terraformDir } from '../paths.js';
import type { BackendSettings, Terraform } from '../terraform/driver.js';
import { agentBundle } from './agent-bundle.js';
import type { EnvContext } from './environment.js';

/** An initialised Terraform for one environment, with the variables `run` applies. */
export interface PlatformTerraform {
  tf: Terraform;
  vars: Record<string, unknown>;
  /** where the plan of this environment is written */
  planFile: string;
  /** where the variables file is written (the data directory, or a temp dir for a preview) */
  varFile: string;
  /** true when planning against an empty local state (the environment has no state bucket yet) */
  emptyState: boolean;
  /** true when this Terraform works in the environment's own data directory */
  persistent: boolean;
  /** removes the temporary directories of a preview (no-op otherwise) */
  dispose(): Promise<void>;
}

export interface PlatformTerraformOptions {
  /** the environment key's ARN; before the bootstrap, a placeholder ARN of the right shape */
  kmsKeyArn: string;
  /** the SSH public key line; default: read from secrets/<env>/common/ssh/<env>.pub */
  sshPublicKey?: string;
  /**
   * a preview: write nothing under platform/terraform, the data directory or AWS — init in a
   * temporary data directory unless the real one is initialised for this backend already,
   * variables and plan file in a temporary directory, `-lock=false`; with `emptyState`, a
   * temporary copy of the root module with a local backend over an empty state.
   */
  preview?: boolean;
  /** the state bucket does not exist yet (preview only) */
  emptyState?: boolean;
  /** destroy plans may use a stand-in SSH key when none is local (cleanup) */
  allowMissingSshKey?: boolean;
  /** the root variables when the caller has them already ({@link platformVars}) */
  vars?: Record<string, unknown>;
  /** the node image when the caller has it (no DescribeImages; {@link guessedPreview}) */
  amiId?: string;
}

/** A syntactically valid OpenSSH key line for destroy plans without the local key (never installed). */
const STAND_IN_SSH_KEY =
  'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA stand-in';

/** The S3 backend of an environment. */
export function backendOf(ctx: EnvContext): BackendSettings {
  return {
    bucket: ctx.names.stateBucket,
    key: ctx.names.stateKey,
    region: ctx.cfg.region,
    ...(ctx.aws.settings.endpoint ? { endpoint: ctx.aws.settings.endpoint } : {}),
  };
}

/**
 * The root variables `run` plans with (tfVars()): the environment file, the SSH public key
 * (o.sshPublicKey, else the working copy's common/ssh/<env>.pub), the node image
 * (resolveAmi: a DescribeImages, read-only in a preview), the KMS key ARN and the agent
 * bundle's key and digest.
 *
 * @returns the variables as written to the variables file, JSON-serialisable
 * @throws UserError when the SSH public key is missing locally (unless o.allowMissingSshKey)
 *   or the node image cannot be found
 */
export async function platformVars(
  ctx: EnvContext,
  o: PlatformTerraformOptions,
): Promise<Record<string, unknown>> {
  const { cfg } = ctx;
  let sshPublicKey = o.sshPublicKey?.trim();
  if (sshPublicKey === undefined) {
    const pub = path.join(secretsDir(cfg.name), 'common', 'ssh', `${cfg.name}.pub`);
    const text = await readFile(pub, 'utf8').catch(() => undefined);
    if (text === undefined && !o.allowMissingSshKey)
      throw new UserError(`${displayPath(pub)} is missing`, {
        hint: `fetch-secrets -e ${cfg.name}, or run -e ${cfg.name}`,
      });
    sshPublicKey = (text ?? STAND_IN_SSH_KEY).trim();
  }
  // both at once; the image's error, if any, is reported first, as when one came after the other
  const ami =
    o.amiId !== undefined
      ? Promise.resolve(o.amiId)
      : resolveAmi(ctx.aws, cfg.nodeAmi, Boolean(ctx.aws.settings.endpoint), {
          readOnly: Boolean(o.preview),
        });
  const bundle = agentBundle();
  bundle.catch(() => {}); // awaited after the image
  const amiId = await ami;
  const agent = await bundle;
  const { tfVars } = await import('../terraform/vars.js');
  return tfVars(cfg, {
    amiId,
    sshPublicKey,
    secretsBucket: ctx.names.secretsBucket,
    kmsKeyArn: o.kmsKeyArn,
    agentBucket: ctx.names.stateBucket,
    agentObjectKey: agent.key,
    agentSha256: agent.sha256,
  });
}

/**
 * Builds the platform Terraform of an environment: the driver over platform/terraform
 * with a per-environment data dir, `init` against the S3 backend in the state bucket
 * (skipped when the data directory was initialised with the same backend, modules and lock
 * file), and the root variables from the environment file, the bootstrap results and the
 * agent bundle. Shared by `run` (plan/apply) and `cleanup` (destroy).
 *
 * @throws UserError when the environment's SSH public key is missing locally (run, or fetch-secrets)
 */
export async function platformTerraform(
  ctx: EnvContext,
  kmsKeyArnOrOpts: string | PlatformTerraformOptions,
): Promise<PlatformTerraform> {
  const o: PlatformTerraformOptions =
    typeof kmsKeyArnOrOpts === 'string' ? { kmsKeyArn: kmsKeyArnOrOpts } : kmsKeyArnOrOpts;
  const { cfg } = ctx;
  // the binary's version is read while the image and the agent bundle are looked up;
  // Terraform.create below finds it ready (its errors come from there, in their place)
  const probe = import('../terraform/driver.js').then((d) => d.probeBinary(undefined, terraformDir()));
  probe.catch(() => {});
  const vars = o.vars ?? (await platformVars(ctx, o));
  const { Terraform } = await import('../terraform/driver.js');
  const env = ctx.local?.env ?? {};
  const dataDir = path.join(stateDir(cfg.name), 'terraform');
  const backend = backendOf(ctx);
  if (!o.preview) {
    const tf = await Terraform.create({ dir: terraformDir(), dataDir, env });
    await tf.initIfNeeded(backend);
    return {
      tf,
      vars,
      planFile: path.join(stateDir(cfg.name), 'platform.tfplan'),
      varFile: path.join(dataDir, 'platform.tfvars.json'),
      emptyState: false,
      persistent: true,
      dispose: async () => {},
    };
  }
  const tmp = await mkdtemp(path.join(tmpdir(), `kp-plan-${cfg.name}-`));
  const dispose = () => rm(tmp, { recursive: true, force: true });
  try {
    const files = { planFile: path.join(tmp, 'platform.tfplan'), varFile: path.join(tmp, 'vars.json') };
    if (!o.emptyState) {
      const own = await ownDataDirPreview(ctx, vars, tmp);
      if (own) return own;
    }
    // otherwise a copy of the root module (init writes its lock file into the module
    // directory) with a temporary data directory; for an environment without a state
    // bucket, an override file replaces the S3 backend with a local one over an empty state
    const root = path.join(tmp, 'root');
    await cp(terraformDir(), root, {
      recursive: true,
      filter: (src) => path.basename(src) !== '.terraform', // the lock file is copied: same providers
    });
    const tf = await Terraform.create({ dir: root, dataDir: path.join(tmp, 'data'), env, quiet: true });
    if (o.emptyState) {
      await writeFile(
        path.join(root, 'kp_backend_override.tf'),
        `terraform {\n  backend "local" {\n    path = ${JSON.stringify(path.join(tmp, 'empty.tfstate'))}\n  }\n}\n`,
      );
      await tf.initLocal();
    } else {
      await tf.init(backend);
    }
    return { tf, vars, ...files, emptyState: Boolean(o.emptyState), persistent: false, dispose };
  } catch (e) {
    await dispose();
    throw e;
  }
}

/**
 * The fast path of a preview: the environment's own data directory, when it is initialised
 * for the environment's backend. The variables, the plan file and the CLI configuration go
 * into `tmp`, and the plan runs with -lock=false: nothing is written in the data directory.
 * `dispose` removes `tmp`.
 * @returns undefined when the data directory is not initialised for this backend
 */
async function ownDataDirPreview(
  ctx: EnvContext,
  vars: Record<string, unknown>,
  tmp: string,
): Promise<PlatformTerraform | undefined> {
  const dataDir = path.join(stateDir(ctx.cfg.name), 'terraform');
  if (!(await readFile(path.join(dataDir, 'kp-init.sha256'), 'utf8').catch(() => ''))) return undefined;
  const { Terraform } = await import('../terraform/driver.js');
  const tf = await Terraform.create({
    dir: terraformDir(),
    dataDir,
    env: ctx.local?.env ?? {},
    quiet: true,
    cliConfigFile: path.join(tmp, 'cli.tfrc'),
  });
  if (!(await tf.isInitialised(backendOf(ctx)))) return undefined;
  return {
    tf,
    vars,
    planFile: path.join(tmp, 'platform.tfplan'),
    varFile: path.join(tmp, 'vars.json'),
    emptyState: false,
    persistent: true,
    dispose: () => rm(tmp, { recursive: true, force: true }),
  };
}

/**
 * A preview Terraform that can start before the environment's AWS inputs are read: in the
 * environment's own data directory when it is initialised for the environment's backend
 * (as a preview's fast path), with {@link platformVars} for the working copy's SSH public
 * key and the node image and KMS key ARN of the variables last applied
 * (`<data dir>/platform.tfvars.json`). Its variables are a guess: the caller compares them
 * with platformVars of the real inputs before it uses a plan made with them.
 *
 * Writes only in a temporary directory (variables, plan file, CLI configuration).
 * @returns undefined when the data directory is not initialised for the backend, holds no
 *   earlier variables, or the working copy has no SSH public key; and on any error (the
 *   real inputs report it in its place)
 */
export async function guessedPreview(ctx: EnvContext): Promise<PlatformTerraform | undefined> {
  const { cfg } = ctx;
  let tmp: string | undefined;
  try {
    const { VARS_FILE } = await import('../terraform/driver.js');
    const [last, pub] = await Promise.all([
      readFile(path.join(stateDir(cfg.name), 'terraform', VARS_FILE), 'utf8').catch(() => undefined),
      readFile(path.join(secretsDir(cfg.name), 'common', 'ssh', `${cfg.name}.pub`), 'utf8').catch(
        () => undefined,
      ),
    ]);
    if (last === undefined || pub === undefined) return undefined;
    const prev = JSON.parse(last) as { ami_id?: unknown; kms_key_arn?: unknown };
    if (typeof prev.ami_id !== 'string' || typeof prev.kms_key_arn !== 'string') return undefined;
    const vars = await platformVars(ctx, {
      kmsKeyArn: prev.kms_key_arn,
      sshPublicKey: pub,
      amiId: prev.ami_id,
      preview: true,
    });
    tmp = await mkdtemp(path.join(tmpdir(), `kp-plan-${cfg.name}-`));
    const own = await ownDataDirPreview(ctx, vars, tmp);
    if (!own) await rm(tmp, { recursive: true, force: true });
    return own;
  } catch (e) {
    if (tmp) await rm(tmp, { recursive: true, force: true });
    log.debug(`terraform: no early plan (${e instanceof Error ? e.message : String(e)})`);
    return undefined;
  }
}
