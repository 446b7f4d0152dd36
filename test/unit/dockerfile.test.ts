import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Copy, DockerfileParser, Env, type Instruction } from 'dockerfile-ast';
import { exec } from '../../src/exec/index.js';

/**
 * The build container's Dockerfile, parsed with dockerfile-ast (the parser behind the
 * Docker language server), checked for what the image promises: a pinned base, verified
 * tools, production dependencies only, scripts on PATH, a non-root user. And the one
 * install script it runs, in its offline `--check` and `--verify` modes.
 */

const REPO = path.resolve(import.meta.dirname, '..', '..', '..');
const DOCKERFILE = path.join(REPO, 'Dockerfile');
const SCRIPT = path.join(REPO, 'docker', 'install-tools.sh');
const text = readFileSync(DOCKERFILE, 'utf8');
const dockerfile = DockerfileParser.parse(text);
const instructions = dockerfile.getInstructions();

interface Stage {
  name: string | null;
  base: string;
  instructions: Instruction[];
}

/** Splits the instructions into build stages (each starts with FROM). */
function stages(): Stage[] {
  const out: Stage[] = [];
  const froms = dockerfile.getFROMs();
  for (const ins of instructions) {
    if (ins.getKeyword() === 'FROM') {
      const from = froms[out.length]!;
      out.push({ name: from.getBuildStage(), base: from.getImage() ?? '', instructions: [] });
    } else if (out.length > 0) {
      out.at(-1)!.instructions.push(ins);
    }
  }
  return out;
}

const runs = (s: Stage) =>
  s.instructions.filter((i) => i.getKeyword() === 'RUN').map((i) => i.getArgumentsContent() ?? '');
const final = () => stages().at(-1)!;

/** `ARG NAME=value` defaults of the Dockerfile. */
function argDefaults(): Map<string, string> {
  const m = new Map<string, string>();
  for (const a of dockerfile.getARGs()) {
    const p = a.getProperty();
    if (p?.getValue()) m.set(p.getName(), p.getValue()!);
  }
  return m;
}

describe('Dockerfile', () => {
  test('parses into a build stage, a production-deps stage and the final image', () => {
    const names = stages().map((s) => s.name);
    expect(names).toEqual(['base', 'build', 'deps', null]);
  });

  test('the base image is pinned by a version tag and a sha256 digest; other stages build on it', () => {
    const froms = dockerfile.getFROMs();
    const external = froms.filter((f) => !stages().some((s) => s.name && s.name === f.getImageName()));
    expect(external).toHaveLength(1);
    const base = external[0]!;
    expect(base.getImageName()).toBe('node');
    const tag = base.getImageTag() ?? '';
    expect(tag).not.toBe('latest');
    // an exact Node.js release on Debian bookworm (slim), e.g. 24.11.1-bookworm-slim
    expect(tag).toMatch(/^\d+\.\d+\.\d+-bookworm-slim$/);
    // an LTS line (even major) that is current: 22 or 24
    expect(['22', '24']).toContain(tag.split('.')[0]);
    expect(base.getImageDigest()).toMatch(/^sha256:[0-9a-f]{64}$/);
    for (const f of froms.filter((x) => x !== base)) expect(f.getImageName()).toBe('base');
  });

  test('the last instruction that sets the user leaves a non-root user, and the image ends with it', () => {
    const img = final();
    const users = img.instructions.filter((i) => i.getKeyword() === 'USER');
    expect(users.length).toBeGreaterThan(0);
    const user = users.at(-1)!.getArgumentsContent() ?? '';
    expect(user).toBe('platform');
    expect(['root', '0', '0:0']).not.toContain(user);
    // nothing after USER runs as someone else or installs anything
    const after = img.instructions.slice(img.instructions.indexOf(users.at(-1)!) + 1);
    expect(after.map((i) => i.getKeyword())).toEqual(['ENTRYPOINT']);
  });

  test('tools are installed by docker/install-tools.sh, copied in and run in the final stage', () => {
    const img = final();
    const copies = img.instructions
      .filter((i) => i.getKeyword() === 'COPY')
      .map((i) => i.getArgumentsContent() ?? '');
    const scriptCopy = copies.find((c) => c.startsWith('docker/install-tools.sh '));
    expect(scriptCopy).toBeDefined();
    const dest = scriptCopy!.split(/\s+/)[1]!;
    expect(runs(img).some((r) => r.includes(dest) && /\binstall\b/.test(r.replace(dest, '')))).toBe(true);
  });

  test('no ADD of remote URLs and no download outside the verifying script', () => {
    for (const i of instructions.filter((x) => x.getKeyword() === 'ADD')) {
      for (const a of i.getArguments()) expect(a.getValue()).not.toMatch(/^(https?|git|ssh):|^git@/);
    }
    for (const s of stages()) for (const r of runs(s)) expect(r).not.toMatch(/\b(curl|wget)\b/);
  });

  test('OpenTofu and kubectl are pinned by version with a SHA-256 per architecture, verified before install', () => {
    const args = argDefaults();
    expect(args.get('OPENTOFU_VERSION')).toMatch(/^\d+\.\d+\.\d+$/);
    expect(args.get('KUBECTL_VERSION')).toMatch(/^v\d+\.\d+\.\d+$/);
    for (const name of [
      'OPENTOFU_SHA256_AMD64',
      'OPENTOFU_SHA256_ARM64',
      'KUBECTL_SHA256_AMD64',
      'KUBECTL_SHA256_ARM64',
    ]) {
      expect(args.get(name)).toMatch(/^[0-9a-f]{64}$/);
    }
    // the four checksums are distinct (no copy-paste placeholder)
    expect(new Set([...args].filter(([k]) => k.includes('_SHA256_')).map(([, v]) => v)).size).toBe(4);
    // the script checks every download with sha256sum --check before installing it
    const script = readFileSync(SCRIPT, 'utf8');
    expect(script).toMatch(/sha256sum --check/);
    const fetches = script.split('\n').filter((l) => /^\s*fetch "https:/.test(l));
    expect(fetches).toHaveLength(2);
    expect(script).toMatch(/fetch\(\) \{[\s\S]*?verify "\$dest" "\$sha"/);
  });

  test('the final image gets production dependencies only', () => {
    const all = stages();
    const deps = all.find((s) => s.name === 'deps')!;
    expect(runs(deps).some((r) => /npm (ci|install)\b.*--omit=dev/.test(r))).toBe(true);
    const img = final();
    // no npm install/ci in the final stage, and node_modules only from the deps stage
    expect(runs(img).some((r) => /\bnpm (ci|install|i)\b/.test(r))).toBe(false);
    const nodeModules = img.instructions
      .filter((i): i is Copy => i instanceof Copy)
      .filter((c) => (c.getArgumentsContent() ?? '').includes('node_modules'));
    expect(nodeModules).toHaveLength(1);
    expect(nodeModules[0]!.getFromFlag()?.getValue()).toBe('deps');
    // the build stage (dev dependencies) contributes only the compiled dist/
    const fromBuild = img.instructions
      .filter((i): i is Copy => i instanceof Copy)
      .filter((c) => c.getFromFlag()?.getValue() === 'build')
      .map((c) => c.getArguments()[0]?.getValue());
    expect(fromBuild).toEqual(['/src/dist']);
  });

  test('scripts/ is copied next to dist/ and is on PATH; the entrypoint is exec-form under tini', () => {
    const img = final();
    const envs = new Map<string, string>();
    for (const e of img.instructions.filter((i): i is Env => i instanceof Env)) {
      for (const p of e.getProperties()) envs.set(p.getName(), p.getValue() ?? '');
    }
    const pathDirs = (envs.get('PATH') ?? '').split(':');
    expect(pathDirs).toContain('/opt/kube-platform/scripts');
    expect(pathDirs).toContain('$PATH');
    // scripts/kube-platform imports ../dist/src/cli/main.js: both must land in one directory
    const copyScripts = img.instructions.findIndex(
      (i) => i instanceof Copy && /^scripts\s/.test(i.getArgumentsContent() ?? ''),
    );
    const copyDist = img.instructions.findIndex(
      (i) => i instanceof Copy && /^\/src\/dist\s/.test(i.getArgumentsContent() ?? ''),
    );
    expect(copyScripts).toBeGreaterThan(-1);
    const workdirAt = (index: number) =>
      img.instructions
        .slice(0, index)
        .filter((i) => i.getKeyword() === 'WORKDIR')
        .at(-1)
        ?.getArgumentsContent();
    expect(workdirAt(copyScripts)).toBe('/opt/kube-platform');
    expect(workdirAt(copyDist)).toBe('/opt/kube-platform');
    expect(img.instructions[copyScripts]!.getArguments()[1]?.getValue()).toBe('./scripts');
    expect(img.instructions[copyDist]!.getArguments()[1]?.getValue()).toBe('./dist');
    expect(envs.get('HOME')).toBe('/home/platform');
    expect(envs.get('PLATFORM_WORKDIR')).toBe('/platform');
    const entry = dockerfile.getENTRYPOINTs().at(-1)!;
    expect(entry.getJSONStrings().map((s) => s.getJSONValue())).toEqual([
      '/usr/bin/tini',
      '--',
      '/opt/kube-platform/docker/entrypoint.sh',
    ]);
  });

  test('.dockerignore is an allow-list that keeps secrets and state out of the build context', () => {
    const lines = readFileSync(path.join(REPO, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const needed of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'src',
      'scripts',
      'docker',
      'platform',
    ]) {
      expect(allowed).toContain(needed);
    }
    for (const never of ['secrets', '.platform', '.git', 'node_modules', 'dist', '.local-aws']) {
      expect(allowed.some((a) => a === never || a.startsWith(`${never}/`))).toBe(false);
    }
    expect(lines).toContain('environments/play-*.env');
  });
});

describe('docker/install-tools.sh', () => {
  const run = (args: string[]) =>
    exec('bash', [SCRIPT, ...args], { cwd: REPO, reject: false, timeoutMs: 60_000 });

  test('--check passes on this checkout (pins, apt list, scripts parse, test tools present)', async () => {
    const r = await run(['--check']);
    expect(r.stderr).toContain('check ok');
    expect(r.exitCode).toBe(0);
  });

  test('--check fails loudly, naming each bad pin, on a Dockerfile with a placeholder or a missing pin', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kp-dockerfile-'));
    const bad = path.join(dir, 'Dockerfile');
    writeFileSync(
      bad,
      text
        .replace(/^ARG KUBECTL_SHA256_ARM64=.*$/m, 'ARG KUBECTL_SHA256_ARM64=TODO')
        .replace(/^ARG OPENTOFU_VERSION=.*$/m, 'ARG OPENTOFU_VERSION=latest'),
    );
    const r = await run(['--check', '--dockerfile', bad]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain('CHECK FAILED (2 problem(s))');
    expect(r.stderr).toContain('KUBECTL_SHA256_ARM64=TODO is not a SHA-256');
    expect(r.stderr).toContain('OPENTOFU_VERSION=latest is not a release version');
  });

  test('--verify accepts the exact SHA-256 and refuses any other', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'kp-verify-'));
    const file = path.join(dir, 'kubectl');
    writeFileSync(file, 'not really kubectl\n');
    // sha256("not really kubectl\n"), computed independently with node:crypto
    const { createHash } = await import('node:crypto');
    const good = createHash('sha256').update('not really kubectl\n').digest('hex');
    const ok = await run(['--verify', file, good]);
    expect(ok.exitCode).toBe(0);
    const flipped = good.slice(0, -1) + (good.endsWith('0') ? '1' : '0');
    const bad = await run(['--verify', file, flipped]);
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('CHECKSUM MISMATCH');
    expect(bad.stderr).toContain(`got ${good}`);
    const malformed = await run(['--verify', file, 'TODO']);
    expect(malformed.exitCode).toBe(1);
  });

  test('unknown arguments exit 2', async () => {
    expect((await run(['--frobnicate'])).exitCode).toBe(2);
  });
});
