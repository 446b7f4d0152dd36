/**
 * Benchmark: how long a command's `--help` takes to print, beside the awscli's start-up
 * (`aws --version`), over repeated runs. Operators feel this latency on every command.
 *
 *   npm run build && node dist/bench/cli-startup.js [runs=15]
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

const RUNS = Number(process.argv[2] ?? 15);
const root = path.resolve(import.meta.dirname, '..', '..');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function time(file: string, args: string[]): number {
  const samples: number[] = [];
  execFileSync(file, args, { stdio: 'ignore' }); // warm the page cache
  for (let i = 0; i < RUNS; i++) {
    const t0 = performance.now();
    execFileSync(file, args, { stdio: 'ignore' });
    samples.push(performance.now() - t0);
  }
  return median(samples);
}

const rows: [string, number][] = [
  ['run --help', time(process.execPath, [path.join(root, 'scripts', 'run'), '--help'])],
  ['fetch-secrets --help', time(process.execPath, [path.join(root, 'scripts', 'fetch-secrets'), '--help'])],
  ['kube-platform --help', time(process.execPath, [path.join(root, 'scripts', 'kube-platform'), '--help'])],
  ['aws --version (baseline)', time('aws', ['--version'])],
];
const base = rows.at(-1)![1];
console.log(`\nmedian of ${RUNS} runs, node ${process.version}`);
for (const [what, ms] of rows)
  console.log(`${what.padEnd(26)} ${ms.toFixed(0).padStart(6)} ms  ${(ms / base).toFixed(2)}x awscli`);
