import { createHash } from 'node:crypto';
import { chmod, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { PlatformError, UserError } from '../errors.js';
import { ExecError, type ExecOptions, type ExecResult, exec, which } from '../exec/index.js';
import { log } from '../log.js';
import { displayPath } from '../paths.js';
import { cliConfigFor, hclString, resolveMirror } from './cli-config.js';
import { outputValues, type PlanSummary, summarizePlan } from './plan.js';

export type { PlanSummary } from './plan.js';
export { type TfExtra, tfVars } from './vars.js';

/**
 * The Terraform / OpenTofu driver (DESIGN.md §6): init, validate, plan, show, apply, destroy
 * and output of the root module `platform/terraform`, one data directory per environment.
 *
 * Every call goes through the one subprocess wrapper (src/exec) with an argument array and
 * `cwd` = the root module. The child gets:
 * - TF_DATA_DIR = the environment's data directory (`.terraform` state, modules, plugins),
 *   so environments never share a backend configuration;
 * - TF_CLI_CONFIG_FILE = `<dataDir>/cli.tfrc`, rendered from `cli.tfrc.tmpl` (provider
 *   mirror, see cli-config.ts); the operator's own ~/.terraformrc is not read;
 * - TF_IN_AUTOMATION=1 and TF_INPUT=0 (no prompts, no "run terraform apply" advice);
 *   TF_CLI_ARGS* unset (an operator's global flags must not change what runs here);
 * - the caller's `env` (AWS_ENDPOINT_URL and credentials in local mode).
 * Variables are passed as a `-var-file` JSON (never `-var` arguments), written with mode 0600.
 * Terraform's progress for plan/apply/destroy streams to our stderr; JSON is captured.
 */

export interface TerraformSettings {
  /** root module directory (platform/terraform) */
  dir: string;
  /** per-environment data directory (TF_DATA_DIR), e.g. <workRoot>/.platform/<env>/terraform; created if missing */
  dataDir: string;
  /** extra environment for the child (AWS_ENDPOINT_URL, credentials in local mode) */
  env?: Record<string, string>;
  /**
   * 'terraform' | 'tofu' | a path. Default: PLATFORM_TF_BINARY, else `terraform` on PATH,
   * else `tofu` on PATH.
   */
  binary?: string;
  /**
   * true: capture terraform's progress output instead of streaming it to stderr (it then
   * appears only in error messages: tests, --json runs). @default false
   */
  quiet?: boolean;
  /** seconds to wait for the state lock held by another run (-lock-timeout) @default 120 */
  lockTimeoutS?: number;
  /**
   * where to write the CLI configuration (TF_CLI_CONFIG_FILE), always; a preview puts it in
   * its temporary directory, so that it writes nothing in the data directory.
   * @default <dataDir>/cli.tfrc, written only when it differs
   */
  cliConfigFile?: string;
}

/** The S3 backend of the environment (DESIGN.md §6: encrypted, native S3 locking). */
export interface BackendSettings {
  /** the state bucket, e.g. kp-<env>-<account>-<region>-tfstate (bootstrapNames().stateBucket) */
  bucket: string;
  /** the state object key, e.g. <env>/platform.tfstate (bootstrapNames().stateKey) */
  key: string;
  region: string;
  /**
   * custom endpoint (an AWS-compatible server such as the local AWS): sets path-style
   * addressing and the S3, STS and IAM endpoints of the backend. undefined = real AWS.
   */
  endpoint?: string;
}

/** `validate -json`: https://developer.hashicorp.com/terraform/cli/commands/validate#json */
const validateJson = z.object({
  valid: z.boolean(),
  diagnostics: z.array(
    z.object({
      severity: z.string(),
      summary: z.string(),
      detail: z.string().optional(),
      range: z.object({ filename: z.string(), start: z.object({ line: z.number() }) }).optional(),
    }),
  ),
});

/** First release of each binary with the S3 backend's `use_lockfile` (S3-native locking). */
const MIN_VERSION: [number, number] = [1, 10];

/** Name of the variables file in the data directory. */
export const VARS_FILE = 'platform.tfvars.json';

/**
 * One root module with one data directory: build it with {@link Terraform.create}, then
 * `init` once per process before plan/apply/destroy/output.
 */
/** Terraform subcommands that take `-var-file`. */
const VAR_COMMANDS = new Set(['plan', 'apply', 'import', 'refresh', 'console', 'destroy']);

export class Terraform {
  /** absolute path of the binary in use */
  readonly binary: string;
  /** its version, e.g. "1.11.4" */
  readonly version: string;
  readonly settings: Readonly<TerraformSettings>;
  readonly #cliConfig: string;

  private constructor(settings: TerraformSettings, binary: string, version: string, cliConfig: string) {
    this.settings = { ...settings, dir: path.resolve(settings.dir), dataDir: path.resolve(settings.dataDir) };
    this.binary = binary;
    this.version = version;
    this.#cliConfig = cliConfig;
  }

  /**
   * Resolves the binary, checks its version, creates the data directory and writes the CLI
   * configuration into it (or into settings.cliConfigFile, leaving the data directory as it is).
   *
   * @throws UserError when `binary` / PLATFORM_TF_BINARY names a program that cannot be
   *   found, or the binary is older than 1.10 (needed by `use_lockfile`)
   * @throws PlatformError (with an installation hint) when neither terraform nor tofu is on PATH
   * @throws UserError from the CLI configuration (bad PLATFORM_TF_MIRROR, missing template)
   */
  static async create(settings: TerraformSettings): Promise<Terraform> {
    const { binary, version } = await probeBinary(settings.binary, settings.dir);
    const [major = 0, minor = 0] = version.split('.').map(Number);
    if (major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1])) {
      throw new UserError(`${binary} is version ${version}; kube-platform needs terraform or tofu >= 1.10`, {
        hint: 'the S3 backend locks state with use_lockfile, added in terraform 1.10 and OpenTofu 1.10',
      });
    }
    const dataDir = path.resolve(settings.dataDir);
    const mirror = await resolveMirror();
    const text = await cliConfigFor(settings.dir, mirror);
    const cliConfig = settings.cliConfigFile ?? path.join(dataDir, 'cli.tfrc');
    if (settings.cliConfigFile !== undefined) await writeFile(cliConfig, text);
    else {
      await mkdir(dataDir, { recursive: true, mode: 0o700 });
      // written only when it differs
      if ((await readFile(cliConfig, 'utf8').catch(() => undefined)) !== text)
        await writeFile(cliConfig, text);
    }
    log.debug(`terraform: ${binary} ${version}, data ${dataDir}, provider mirror ${mirror ?? 'none'}`);
    return new Terraform(settings, binary, version, cliConfig);
  }

  /**
   * `init` with the S3 backend: bucket, key, region, encrypt=true, use_lockfile=true, and for
   * a custom endpoint use_path_style=true plus endpoints {s3, sts, iam}. `-reconfigure`:
   * the backend settings always come from the toolkit, never from a previous init.
   * https://developer.hashicorp.com/terraform/language/backend/s3
   *
   * @throws UserError when the endpoint is not an http(s) URL
   * @throws ExecError when terraform fails
   */
  async init(backend: BackendSettings): Promise<void> {
    const config = backendConfig(backend);
    await this.#run(
      ['init', '-input=false', '-reconfigure', ...config.map((c) => `-backend-config=${c}`)],
      'stream',
    );
    await writeFile(path.join(this.settings.dataDir, INIT_MARKER), `${await this.#initDigest(config)}\n`);
  }

  /**
   * true when the data directory was initialised by {@link init} with this backend
   * configuration, this binary and the same module sources and provider lock file: `init`
   * would change nothing and can be skipped (it costs 2-8 s).
   */
  async isInitialised(backend: BackendSettings): Promise<boolean> {
    const marker = await readFile(path.join(this.settings.dataDir, INIT_MARKER), 'utf8').catch(() => '');
    return marker.trim() === (await this.#initDigest(backendConfig(backend)));
  }

  /** {@link init} unless {@link isInitialised}. @returns true when init ran */
  async initIfNeeded(backend: BackendSettings): Promise<boolean> {
    if (await this.isInitialised(backend)) {
      log.debug('terraform: backend configuration unchanged, init skipped');
      return false;
    }
    await this.init(backend);
    return true;
  }

  /**
   * `init` of a root module whose backend an override file sets (a local backend for the
   * plan of an environment that has no state bucket yet). No -backend-config.
   */
  async initLocal(): Promise<void> {
    await this.#run(['init', '-input=false', '-reconfigure'], 'stream');
  }

  /** SHA-256 over what decides whether init is needed: backend config, binary, module calls, lock file. */
  async #initDigest(config: string[]): Promise<string> {
    const h = createHash('sha256');
    h.update(JSON.stringify({ config, binary: this.binary, version: this.version }));
    h.update(
      (await readFile(path.join(this.settings.dir, '.terraform.lock.hcl'), 'utf8').catch(() => '')) ?? '',
    );
    const { listFiles } = await import('../fsutil.js');
    for (const f of (await listFiles(this.settings.dir)).filter((x) => x.endsWith('.tf')).sort()) {
      const text = await readFile(path.join(this.settings.dir, f), 'utf8');
      // module calls and provider requirements are what init installs
      for (const line of text.split('\n'))
        if (/^\s*(source|version)\s*=/.test(line)) h.update(`${f}:${line.trim()}\n`);
    }
    return h.digest('hex');
  }

  /**
   * `validate`: the configuration is syntactically valid and internally consistent.
   * @throws UserError listing each diagnostic as `file:line: summary: detail`
   */
  async validate(): Promise<void> {
    const r = await this.#run(['validate', '-json', '-no-color'], 'capture', true);
    let report: z.infer<typeof validateJson>;
    try {
      report = validateJson.parse(JSON.parse(r.stdout));
    } catch {
      throw new ExecError(`${this.binary} validate`, r); // not the JSON report: terraform itself failed
    }
    if (report.valid && r.exitCode === 0) return;
    const lines = report.diagnostics
      .filter((d) => d.severity === 'error')
      .map((d) => {
        const where = d.range
          ? `${displayPath(path.join(this.settings.dir, d.range.filename))}:${d.range.start.line}: `
          : '';
        return `  ${where}${d.summary}${d.detail ? `: ${d.detail}` : ''}`;
      });
    throw new UserError(
      `the Terraform configuration in ${displayPath(this.settings.dir)} is invalid\n${lines.join('\n')}`,
    );
  }

  /**
   * `plan` into a saved plan file, with the variables written to `<dataDir>/platform.tfvars.json`.
   *
   * @param vars the root variables (tfVars()); JSON-serialisable
   * @param planFile where to save the plan; a relative path is taken inside the data directory
   * @param opts.destroy plan the destruction of everything instead
   * @param opts.onSpawn called once terraform is started
   * @returns what the plan would do ({@link PlanSummary}); `changes` from -detailed-exitcode
   * @throws ExecError when terraform fails (exit code 1)
   */
  async plan(
    vars: Record<string, unknown>,
    planFile: string,
    opts: {
      destroy?: boolean;
      lock?: boolean;
      varFile?: string;
      json?: boolean;
      onSpawn?: () => void;
    } = {},
  ): Promise<PlanSummary> {
    const varFile = await this.writeVars(vars, opts.varFile);
    const out = path.resolve(this.settings.dataDir, planFile);
    const r = await this.#run(
      [
        'plan',
        '-input=false',
        '-detailed-exitcode',
        // lock=false: a plan that only previews must not write the state lock object
        ...(opts.lock === false ? ['-lock=false'] : [this.#lockTimeout()]),
        `-var-file=${varFile}`,
        `-out=${out}`,
        ...(opts.destroy ? ['-destroy'] : []),
      ],
      'stream',
      true,
      opts.onSpawn ? { onSpawn: opts.onSpawn } : {},
    );
    if (r.exitCode !== 0 && r.exitCode !== 2) throw new ExecError(`${this.binary} plan`, r);
    const changes = r.exitCode === 2;
    // `show -json` loads every provider schema (seconds): skipped for a plan without changes
    // unless the caller needs the JSON (opts.json)
    if (!changes && opts.json === false)
      return { changes, add: 0, change: 0, destroy: 0, addresses: [], planFile: out };
    const json = await this.showJson(out);
    return { changes, ...summarizePlan(json), planFile: out, json };
  }

  /** The saved plan as text for the operator (`show -no-color`). @throws ExecError */
  async showPlan(planFile: string): Promise<string> {
    const r = await this.#run(
      ['show', '-no-color', path.resolve(this.settings.dataDir, planFile)],
      'capture',
    );
    return r.stdout;
  }

  /**
   * The JSON representation (`show -json`) of a saved plan, or of the current state when no
   * plan file is given: { format_version, values?: { root_module, outputs }, resource_changes?... }.
   * https://developer.hashicorp.com/terraform/internals/json-format
   * @throws ExecError when terraform fails
   */
  async showJson(planFile?: string): Promise<unknown> {
    const file = planFile === undefined ? [] : [path.resolve(this.settings.dataDir, planFile)];
    const r = await this.#run(['show', '-json', ...file], 'capture');
    return JSON.parse(r.stdout) as unknown;
  }

  /**
   * Applies a saved plan (no prompt: the plan is what was reviewed).
   * @throws ExecError when terraform fails, e.g. the plan is stale (state changed since)
   */
  async apply(planFile: string): Promise<void> {
    await this.#run(
      [
        'apply',
        '-input=false',
        '-auto-approve',
        this.#lockTimeout(),
        path.resolve(this.settings.dataDir, planFile),
      ],
      'stream',
    );
  }

  /**
   * Destroys everything in the state, without a prompt: the caller confirms first (cleanup
   * makes the operator type the environment name).
   * @throws ExecError when terraform fails
   */
  async destroy(vars: Record<string, unknown>): Promise<void> {
    const varFile = await this.writeVars(vars);
    await this.#run(
      ['destroy', '-input=false', '-auto-approve', this.#lockTimeout(), `-var-file=${varFile}`],
      'stream',
    );
  }

  /**
   * The root module's outputs, `{ name: value }` (`output -json`). Empty before the first apply.
   * @throws ExecError when terraform fails; PlatformError on unexpected JSON
   */
  async output(): Promise<Record<string, unknown>> {
    const r = await this.#run(['output', '-json'], 'capture');
    return outputValues(JSON.parse(r.stdout || '{}'));
  }

  /**
   * Writes the variables to `<dataDir>/platform.tfvars.json` with mode 0600 and returns its path.
   * @throws PlatformError when a value cannot be serialised
   */
  async writeVars(
    vars: Record<string, unknown>,
    file = path.join(this.settings.dataDir, VARS_FILE),
  ): Promise<string> {
    let text: string;
    try {
      text = `${JSON.stringify(vars, null, 2)}\n`;
    } catch (e) {
      throw new PlatformError(`cannot serialise the Terraform variables: ${(e as Error).message}`, {
        cause: e,
      });
    }
    await writeFile(file, text, { mode: 0o600 });
    await chmod(file, 0o600);
    return file;
  }

  /**
   * Runs `terraform ARGS` for the operator (after {@link init}: the backend is the
   * toolkit's), with our stdin, stdout and stderr, and returns its exit code. Subcommands
   * that read variables (plan, apply, import, refresh, console, destroy) get the variables
   * file the toolkit writes (`-var-file`), so `import` sees the same inputs as `run`.
   * @param varFile from {@link writeVars}
   * @returns terraform's exit code
   */
  async passthrough(args: string[], varFile?: string): Promise<number> {
    const sub = args[0] ?? '';
    const full =
      varFile && VAR_COMMANDS.has(sub) ? [sub, `-var-file=${varFile}`, ...args.slice(1)] : [...args];
    const r = await exec(this.binary, full, {
      cwd: this.settings.dir,
      env: this.childEnv(),
      stdio: 'passthrough',
      reject: false,
    });
    return r.exitCode;
  }

  /** The environment of every child: see the module comment. */
  childEnv(): Record<string, string | undefined> {
    return {
      ...this.settings.env,
      TF_DATA_DIR: this.settings.dataDir,
      TF_CLI_CONFIG_FILE: this.#cliConfig,
      TF_IN_AUTOMATION: '1',
      TF_INPUT: '0',
      TF_CLI_ARGS: undefined,
      TF_CLI_ARGS_init: undefined,
      TF_CLI_ARGS_plan: undefined,
      TF_CLI_ARGS_apply: undefined,
      TF_CLI_ARGS_destroy: undefined,
    };
  }

  #lockTimeout(): string {
    return `-lock-timeout=${this.settings.lockTimeoutS ?? 120}s`;
  }

  /**
   * Runs the binary. 'stream': progress to stderr (unless quiet), colours off when stderr is
   * not a terminal; 'capture': output captured (JSON). `allowFailure`: return instead of
   * throwing on a non-zero exit.
   */
  async #run(
    args: string[],
    mode: 'stream' | 'capture',
    allowFailure = false,
    control: Pick<ExecOptions, 'onSpawn'> = {},
  ): Promise<ExecResult> {
    const stream = mode === 'stream' && !this.settings.quiet;
    const noColor = mode === 'capture' || !process.stderr.isTTY ? ['-no-color'] : [];
    const full = args.includes('-no-color') ? args : [args[0]!, ...noColor, ...args.slice(1)];
    return exec(this.binary, full, {
      cwd: this.settings.dir,
      env: this.childEnv(),
      stdio: stream ? 'inherit' : 'pipe',
      reject: !allowFailure,
      ...control,
    });
  }
}

/**
 * Finds the binary: the explicit choice (`binary`, else PLATFORM_TF_BINARY), else
 * `terraform`, else `tofu` on PATH.
 *
 * @returns the absolute path (or the given path)
 * @throws UserError when an explicit choice cannot be found or executed
 * @throws PlatformError with an installation hint when neither is installed
 */
export async function resolveBinary(binary?: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const explicit = binary ?? (env.PLATFORM_TF_BINARY || undefined);
  if (explicit !== undefined) {
    const found = await which(explicit);
    if (!found) {
      const source = binary === undefined ? `PLATFORM_TF_BINARY=${explicit}` : explicit;
      throw new UserError(`${source}: no such program on PATH (or not executable)`, {
        hint: 'use terraform or tofu, or the path of one of them',
      });
    }
    return found;
  }
  for (const candidate of ['terraform', 'tofu']) {
    const found = await which(candidate);
    if (found) return found;
  }
  throw new PlatformError('neither terraform nor tofu is installed', {
    hint: 'install OpenTofu (https://opentofu.org/docs/intro/install/) or Terraform >= 1.10, or set PLATFORM_TF_BINARY',
  });
}

/**
 * Versions already read in this process, by binary path, size and modification time, so
 * that a caller can start {@link probeBinary} early (a `version -json` is 0.1-0.3 s) and
 * {@link Terraform.create} finds the answer ready.
 */
const versions = new Map<string, Promise<string>>();

/**
 * Resolves the binary ({@link resolveBinary}) and reads its version, once per binary file
 * in this process (a failure is not remembered).
 * @returns the absolute path and the version, e.g. "1.11.4"
 * @throws as resolveBinary; PlatformError when the version cannot be read
 */
export async function probeBinary(binary?: string, cwd = '.'): Promise<{ binary: string; version: string }> {
  const found = await resolveBinary(binary);
  const s = await stat(found).catch(() => undefined);
  const key = `${found}\0${s?.size}\0${s?.mtimeMs}`;
  let version = versions.get(key);
  if (!version) {
    version = binaryVersion(found, cwd);
    versions.set(key, version);
    version.catch(() => versions.delete(key));
  }
  return { binary: found, version: await version };
}

/** `<binary> version -json` → "1.11.4" (both terraform and tofu report `terraform_version`). */
async function binaryVersion(binary: string, cwd: string): Promise<string> {
  const r = await exec(binary, ['version', '-json'], { cwd, env: { TF_CLI_CONFIG_FILE: undefined } });
  const version = (JSON.parse(r.stdout) as { terraform_version?: unknown }).terraform_version;
  if (typeof version !== 'string' || !/^\d+\.\d+\.\d+/.test(version)) {
    throw new PlatformError(`cannot tell the version of ${binary} from: ${r.stdout.slice(0, 200)}`);
  }
  return version;
}

/** Marker file in the data directory: the digest of the last successful init. */
const INIT_MARKER = 'kp-init.sha256';

/** The -backend-config values of an S3 backend. @throws UserError for a bad endpoint */
function backendConfig(backend: BackendSettings): string[] {
  const config: string[] = [
    `bucket=${backend.bucket}`,
    `key=${backend.key}`,
    `region=${backend.region}`,
    'encrypt=true',
    'use_lockfile=true',
  ];
  if (backend.endpoint !== undefined) {
    const e = hclString(parseEndpoint(backend.endpoint));
    config.push('use_path_style=true', `endpoints={s3=${e},sts=${e},iam=${e}}`);
  }
  return config;
}

/** Validates a backend endpoint: an http(s) URL. @throws UserError */
function parseEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new UserError(`the state backend endpoint "${endpoint}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UserError(`the state backend endpoint "${endpoint}" is not an http(s) URL`);
  }
  return endpoint;
}
