import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PlatformError, UserError } from '../../src/errors.js';
import { toolkitRoot } from '../../src/paths.js';
import { hclString, renderCliConfig, resolveMirror } from '../../src/terraform/cli-config.js';
import { resolveBinary, Terraform, VARS_FILE } from '../../src/terraform/driver.js';
import { outputValues, summarizePlan } from '../../src/terraform/plan.js';

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'kp-tf-unit-'));
const terraformDir = path.join(toolkitRoot(), 'platform', 'terraform');

/**
 * A stand-in binary (a shell script) that answers `version -json` with `version` and records
 * every other invocation (arguments and the TF_* environment) as one JSON line in `log`.
 */
function fakeBinary(dir: string, version: string, log: string): string {
  const file = path.join(dir, 'fake-terraform');
  writeFileSync(
    file,
    `#!/bin/sh
if [ "$1" = version ]; then echo '{"terraform_version":"${version}"}'; exit 0; fi
node -e 'require("fs").appendFileSync(process.argv[1], JSON.stringify({ args: process.argv.slice(2),
  env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("TF_"))), cwd: process.cwd() }) + "\\n")' "${log}" "$@"
`,
    { mode: 0o755 },
  );
  return file;
}

describe('CLI configuration', () => {
  test('hclString quotes, escapes and neutralises template sequences', () => {
    expect(hclString('/opt/tf-plugins')).toBe('"/opt/tf-plugins"');
    expect(hclString('a"b\\c')).toBe('"a\\"b\\\\c"');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: an HCL template sequence, on purpose
    expect(hclString('/x/${HOME}/%{if}')).toBe('"/x/$${HOME}/%%{if}"');
  });

  test('the shipped template renders a filesystem mirror for hashicorp providers, direct for the rest', () => {
    const template = readFileSync(path.join(terraformDir, 'cli.tfrc.tmpl'), 'utf8');
    const text = renderCliConfig(template, '/opt/tf-plugins', 'cli.tfrc.tmpl');
    expect(text).toMatch(/filesystem_mirror\s*\{\s*path\s*=\s*"\/opt\/tf-plugins"/);
    expect(text).toMatch(/include\s*=\s*\["registry\.terraform\.io\/hashicorp\/\*"/);
    expect(text).toMatch(/direct\s*\{\s*exclude\s*=\s*\["registry\.terraform\.io\/hashicorp\/\*"/);
    expect(text).not.toContain('{{MIRROR}}');
  });

  test('without a mirror there is no provider_installation block (registries as usual)', () => {
    const template = readFileSync(path.join(terraformDir, 'cli.tfrc.tmpl'), 'utf8');
    expect(renderCliConfig(template, undefined, 'cli.tfrc.tmpl')).not.toContain('provider_installation');
  });

  test('a template without the placeholder is a UserError naming the file', () => {
    expect(() => renderCliConfig('provider_installation {}', '/m', '/x/cli.tfrc.tmpl')).toThrow(UserError);
    expect(() => renderCliConfig('provider_installation {}', '/m', '/x/cli.tfrc.tmpl')).toThrow(
      /cli\.tfrc\.tmpl/,
    );
  });

  test('mirror resolution: PLATFORM_TF_MIRROR, then the default mirror if it holds the AWS provider, else none', async () => {
    const dir = tmp();
    expect(await resolveMirror({ PLATFORM_TF_MIRROR: dir }, '/nonexistent')).toBe(dir);
    expect(await resolveMirror({ PLATFORM_TF_MIRROR: '' }, dir)).toBeUndefined();
    await expect(resolveMirror({ PLATFORM_TF_MIRROR: path.join(dir, 'nope') })).rejects.toThrow(
      /PLATFORM_TF_MIRROR/,
    );

    const empty = tmp();
    expect(await resolveMirror({}, empty)).toBeUndefined();
    const mirror = tmp();
    mkdirSync(path.join(mirror, 'registry.terraform.io', 'hashicorp', 'aws'), { recursive: true });
    expect(await resolveMirror({}, mirror)).toBe(mirror);
  });
});

describe('plan and output JSON', () => {
  const change = (address: string, ...actions: string[]) => ({ address, change: { actions } });

  test('summarizePlan counts creates, updates, deletes; a replacement is one add and one destroy', () => {
    const s = summarizePlan({
      format_version: '1.2',
      resource_changes: [
        change('a.one', 'create'),
        change('a.two', 'create'),
        change('b.one', 'update'),
        change('c.one', 'delete'),
        change('d.one', 'delete', 'create'),
        change('e.one', 'create', 'delete'),
        change('f.one', 'no-op'),
        change('data.g.one', 'read'),
      ],
    });
    expect(s).toEqual({
      add: 4,
      change: 1,
      destroy: 3,
      addresses: ['a.one', 'a.two', 'b.one', 'c.one', 'd.one', 'e.one'],
    });
  });

  test('a plan without resource changes is all zeros; a non-plan is refused', () => {
    expect(summarizePlan({ format_version: '1.2' })).toEqual({
      add: 0,
      change: 0,
      destroy: 0,
      addresses: [],
    });
    expect(() => summarizePlan({ resource_changes: 'x' })).toThrow(PlatformError);
    expect(() => summarizePlan(null)).toThrow(/terraform show -json/);
  });

  test('outputValues keeps the values only', () => {
    expect(
      outputValues({
        vpc_id: { value: 'vpc-1', type: 'string', sensitive: false },
        master_asg_names: { value: ['a', 'b'], type: ['list', 'string'], sensitive: false },
      }),
    ).toEqual({ vpc_id: 'vpc-1', master_asg_names: ['a', 'b'] });
    expect(() => outputValues({ x: 1 })).toThrow(PlatformError);
  });
});

describe('binary resolution', () => {
  test('an explicit binary that does not exist is a UserError (exit 2) naming it', async () => {
    const e = await resolveBinary('/nonexistent/terraform').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(UserError);
    expect((e as UserError).exitCode).toBe(2);
    expect((e as Error).message).toContain('/nonexistent/terraform');
    await expect(resolveBinary(undefined, { PLATFORM_TF_BINARY: 'no-such-tofu' })).rejects.toThrow(
      /PLATFORM_TF_BINARY=no-such-tofu/,
    );
  });

  test('an explicit path is used as given', async () => {
    const dir = tmp();
    const bin = fakeBinary(dir, '1.11.0', path.join(dir, 'log'));
    expect(await resolveBinary(bin)).toBe(bin);
    expect(await resolveBinary(undefined, { PLATFORM_TF_BINARY: bin })).toBe(bin);
  });

  test('with neither terraform nor tofu on PATH: a PlatformError with an installation hint', async () => {
    const saved = process.env.PATH;
    process.env.PATH = tmp();
    try {
      const e = await resolveBinary(undefined, {}).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(PlatformError);
      expect((e as Error).message).toMatch(/neither terraform nor tofu/);
      expect((e as PlatformError).hint).toMatch(/OpenTofu|Terraform/);
    } finally {
      process.env.PATH = saved;
    }
  });
});

describe('Terraform driver (against a recording stand-in binary)', () => {
  test('refuses a binary older than 1.10 (use_lockfile)', async () => {
    const dir = tmp();
    const bin = fakeBinary(dir, '1.5.7', path.join(dir, 'log'));
    await expect(
      Terraform.create({ dir: terraformDir, dataDir: path.join(dir, 'data'), binary: bin }),
    ).rejects.toThrow(/1\.5\.7.*>= 1\.10/);
  });

  test('init passes the S3 backend settings as -backend-config, with TF_DATA_DIR and the rendered CLI config', async () => {
    const dir = tmp();
    const log = path.join(dir, 'log');
    const dataDir = path.join(dir, 'data');
    const tf = await Terraform.create({
      dir: terraformDir,
      dataDir,
      binary: fakeBinary(dir, '1.11.0', log),
      env: { AWS_ENDPOINT_URL: 'http://127.0.0.1:4566' },
      quiet: true,
    });
    await tf.init({
      bucket: 'state-b',
      key: 'env/platform.tfstate',
      region: 'eu-west-1',
      endpoint: 'http://127.0.0.1:4566',
    });
    const call = JSON.parse(readFileSync(log, 'utf8').trim()) as {
      args: string[];
      env: Record<string, string>;
      cwd: string;
    };
    expect(call.cwd).toBe(terraformDir);
    expect(call.args[0]).toBe('init');
    expect(call.args).toEqual(
      expect.arrayContaining([
        '-input=false',
        '-reconfigure',
        '-backend-config=bucket=state-b',
        '-backend-config=key=env/platform.tfstate',
        '-backend-config=region=eu-west-1',
        '-backend-config=encrypt=true',
        '-backend-config=use_lockfile=true',
        '-backend-config=use_path_style=true',
        '-backend-config=endpoints={s3="http://127.0.0.1:4566",sts="http://127.0.0.1:4566",iam="http://127.0.0.1:4566"}',
      ]),
    );
    expect(call.env.TF_DATA_DIR).toBe(dataDir);
    expect(call.env.TF_IN_AUTOMATION).toBe('1');
    expect(call.env.TF_INPUT).toBe('0');
    expect(call.env.TF_CLI_CONFIG_FILE).toBe(path.join(dataDir, 'cli.tfrc'));
    expect(readFileSync(call.env.TF_CLI_CONFIG_FILE!, 'utf8')).toMatch(/provider|registr/);
  });

  test("a preview's CLI configuration goes where it says, and the data directory stays as it is", async () => {
    const dir = tmp();
    const dataDir = path.join(dir, 'data');
    mkdirSync(dataDir);
    writeFileSync(path.join(dataDir, 'cli.tfrc'), '# an older configuration\n');
    const cliConfigFile = path.join(dir, 'preview', 'cli.tfrc');
    mkdirSync(path.dirname(cliConfigFile));
    const log = path.join(dir, 'log');
    const tf = await Terraform.create({
      dir: terraformDir,
      dataDir,
      binary: fakeBinary(dir, '1.11.0', log),
      quiet: true,
      cliConfigFile,
    });
    await tf.plan({ a: 1 }, path.join(dir, 'preview', 'p'), {
      lock: false,
      varFile: path.join(dir, 'preview', 'v.json'),
      json: false,
    });
    const call = JSON.parse(readFileSync(log, 'utf8').trim().split('\n')[0]!) as {
      env: Record<string, string>;
    };
    expect(call.env.TF_CLI_CONFIG_FILE).toBe(cliConfigFile);
    expect(readFileSync(cliConfigFile, 'utf8')).toMatch(/provider|registr/);
    expect(readFileSync(path.join(dataDir, 'cli.tfrc'), 'utf8')).toBe('# an older configuration\n');
  });

  test('against real AWS, init sets neither path-style nor endpoints', async () => {
    const dir = tmp();
    const log = path.join(dir, 'log');
    const tf = await Terraform.create({
      dir: terraformDir,
      dataDir: path.join(dir, 'd'),
      binary: fakeBinary(dir, '1.10.0', log),
      quiet: true,
    });
    await tf.init({ bucket: 'b', key: 'k', region: 'us-east-1' });
    const { args } = JSON.parse(readFileSync(log, 'utf8').trim()) as { args: string[] };
    expect(args.some((a) => a.includes('use_path_style') || a.includes('endpoints'))).toBe(false);
  });

  test('a backend endpoint that is not an http(s) URL is a UserError', async () => {
    const dir = tmp();
    const tf = await Terraform.create({
      dir: terraformDir,
      dataDir: path.join(dir, 'd'),
      binary: fakeBinary(dir, '1.11.0', path.join(dir, 'log')),
    });
    await expect(
      tf.init({ bucket: 'b', key: 'k', region: 'eu-west-1', endpoint: 'file:///etc' }),
    ).rejects.toThrow(UserError);
  });

  test('variables go to a 0600 JSON file in the data directory, never to -var arguments', async () => {
    const dir = tmp();
    const dataDir = path.join(dir, 'd');
    const tf = await Terraform.create({
      dir: terraformDir,
      dataDir,
      binary: fakeBinary(dir, '1.11.0', path.join(dir, 'log')),
    });
    const file = await tf.writeVars({ environment: 'play-x', worker_count: 2 });
    expect(file).toBe(path.join(dataDir, VARS_FILE));
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ environment: 'play-x', worker_count: 2 });
  });
});
