import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { commands } from '../../src/cli/registry.js';

/**
 * The layout rules of README "Development" that the compiler cannot see: the node agent
 * (src/agent/) reaches nothing of the operator side, even through the modules it shares,
 * and every command is one spec file plus one handler file named after it.
 */

const REPO = path.resolve(import.meta.dirname, '..', '..', '..');
const SRC = path.join(REPO, 'src');

/** Relative imports of a TypeScript source: static, re-exports and dynamic `import()`. */
function relativeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [
    ...text.matchAll(/\bfrom\s+'(\.[^']+)'/g),
    ...text.matchAll(/\bimport\s*\(\s*'(\.[^']+)'\s*\)/g),
    ...text.matchAll(/^import\s+'(\.[^']+)'/gm),
  ].map((m) => m[1]!);
  return specs.map((s) => path.resolve(path.dirname(file), s.replace(/\.js$/, '.ts')));
}

/** Every source file reachable from `entries` through relative imports. */
function reachable(entries: string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...entries];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    if (f.endsWith('.validate.ts')) continue; // generated, imports nothing
    for (const dep of relativeImports(f)) todo.push(dep);
  }
  return seen;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts'))
    .map((f) => path.join(dir, f));
}

/** Operator-side code the agent must not reach: what would drag dotenv, execa, STS or moto into the bundle. */
const OPERATOR_SIDE = [
  'src/cli/',
  'src/commands/',
  'src/context/',
  'src/config/',
  'src/exec/',
  'src/fleet/',
  'src/aws/local.ts',
  'src/aws/inventory.ts',
  // AwsClients carries EC2, Auto Scaling, ELBv2 and STS: the agent builds StorageClients (S3, KMS)
  'src/aws/clients.ts',
];

test('the node agent (src/agent/) reaches nothing of the operator side, directly or through shared modules', () => {
  const agentFiles = tsFiles(path.join(SRC, 'agent'));
  expect(agentFiles.length).toBeGreaterThan(5);
  const offenders: string[] = [];
  for (const f of reachable(agentFiles)) {
    const rel = path.relative(REPO, f);
    expect(existsSync(f)).toBe(true);
    if (OPERATOR_SIDE.some((p) => rel.startsWith(p))) offenders.push(rel);
  }
  expect(offenders).toEqual([]);
});

test('the layout test sees an operator-side import when there is one', () => {
  // the check above is not vacuous: the toolkit's manifest-sync handler does reach the operator side
  const rels = [...reachable([path.join(SRC, 'commands', 'manifest-sync.ts')])].map((f) =>
    path.relative(REPO, f),
  );
  expect(rels).toContain('src/context/environment.ts');
  expect(rels).toContain('src/agent/run.ts');
});

test('every command is one spec file and one handler file, named after the command', () => {
  const names = commands.map((c) => c.name);
  expect(names.length).toBeGreaterThanOrEqual(14);
  for (const name of names) {
    expect([name, existsSync(path.join(SRC, 'cli', 'specs', `${name}.ts`))]).toEqual([name, true]);
    expect([name, existsSync(path.join(SRC, 'commands', `${name}.ts`))]).toEqual([name, true]);
  }
  // and nothing else sits in commands/: a module there is a command's handler
  const handlers = readdirSync(path.join(SRC, 'commands')).map((f) => f.replace(/\.ts$/, ''));
  expect(handlers.sort()).toEqual([...names].sort());
  const specs = readdirSync(path.join(SRC, 'cli', 'specs')).map((f) => f.replace(/\.ts$/, ''));
  expect(specs.sort()).toEqual([...names].sort());
});

test('the command seam is typed: no `as never` and no Record<string, unknown> in specs, handlers or the CLI', () => {
  const files = [
    ...tsFiles(path.join(SRC, 'cli')),
    ...tsFiles(path.join(SRC, 'commands')),
    ...tsFiles(path.join(SRC, 'context')),
  ];
  const offenders = files.flatMap((f) =>
    readFileSync(f, 'utf8')
      .split('\n')
      .map((line, i) => ({ line, at: `${path.relative(REPO, f)}:${i + 1}` }))
      .filter(({ line }) => /\bas never\b|Record<string, unknown>/.test(line) && !/^\s*(\*|\/\/)/.test(line))
      .map(({ at }) => at),
  );
  // terraform.ts: the root module's variables are data, not options
  expect(offenders.filter((o) => !o.startsWith('src/context/terraform.ts'))).toEqual([]);
});
