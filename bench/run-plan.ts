/**
 * `run --plan` on an unchanged environment against a bare `terraform plan` of the same root
 * module, same state and variables, in the same run (issue 12 item 6; goal ≤ 1.2×).
 *
 *   npm run build && node dist/bench/run-plan.js [--rounds 5]
 *
 * Builds an environment in a moto_server it starts (`run --yes`, a few minutes), then per
 * round times, as child processes: `run -e ENV --plan` (the whole read-only change set:
 * bootstrap inspection, PKI plan, layer diffs, agent, terraform plan with -lock=false,
 * show -json, policy) and `terraform plan -lock=false -var-file=… -out=…` with the
 * environment's data directory, the way an operator would run it by hand, in alternating
 * order. Prints each round and the median ratio.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { cli, workspace } from '../test/helpers/cli.js';
import { startMoto } from '../test/helpers/moto.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const rounds = Number(values.rounds);
const ENV = 'play-bench';
const { moto, proc } = await startMoto();
const ws = workspace({ [ENV]: '' });
const env = {
  ...moto.env,
  PLATFORM_WORKDIR: ws.dir,
  HOME: ws.home,
  AWS_PROFILE: undefined,
  PLATFORM_LOCAL_AWS_DIR: path.join(ws.dir, '.local-aws'),
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  const t0 = performance.now();
  const built = await cli(['run', '-e', ENV, '--yes'], env);
  if (built.code !== 0) throw new Error(`run --yes failed (${built.code}):\n${built.stderr.slice(-3000)}`);
  process.stderr.write(`built ${ENV} in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  const dataDir = path.join(ws.dir, '.platform', ENV, 'terraform');
  const varFile = path.join(dataDir, 'platform.tfvars.json');
  if (!existsSync(varFile)) throw new Error(`${varFile} missing`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kp-bench-plan-'));
  const tfEnv = {
    ...process.env,
    ...moto.env,
    TF_DATA_DIR: dataDir,
    TF_CLI_CONFIG_FILE: path.join(dataDir, 'cli.tfrc'),
    TF_IN_AUTOMATION: '1',
    TF_INPUT: '0',
  };
  const rows: { run: number; terraform: number }[] = [];
  const timeRun = async () => {
    const t = performance.now();
    const r = await cli(['run', '-e', ENV, '--plan', '--exit-code'], env);
    if (r.code !== 0)
      throw new Error(`run --plan was not a no-op (exit ${r.code}):\n${r.stderr.slice(-2000)}`);
    return (performance.now() - t) / 1000;
  };
  const timeTerraform = () => {
    const t = performance.now();
    execFileSync(
      'terraform',
      [
        'plan',
        '-no-color',
        '-input=false',
        '-lock=false',
        `-var-file=${varFile}`,
        `-out=${path.join(tmp, 'p')}`,
      ],
      { cwd: path.join(ws.dir, 'platform', 'terraform'), env: tfEnv, stdio: 'ignore' },
    );
    return (performance.now() - t) / 1000;
  };
  process.stderr.write(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  for (let i = 0; i < rounds; i++) {
    // the order alternates, so that neither side is always the one that runs on a warmer
    // (or busier) machine
    let run: number;
    let terraform: number;
    if (i % 2 === 0) {
      run = await timeRun();
      terraform = timeTerraform();
    } else {
      terraform = timeTerraform();
      run = await timeRun();
    }
    rows.push({ run, terraform });
    process.stdout.write(
      `round ${i + 1}: run --plan ${run.toFixed(1)} s, terraform plan ${terraform.toFixed(1)} s, ratio ${(run / terraform).toFixed(2)}\n`,
    );
  }
  const ratios = rows.map((r) => r.run / r.terraform);
  const ratio = median(ratios);
  process.stderr.write(
    `load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}\n`,
  );
  process.stdout.write(
    `ratios ${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)}; run first in odd rounds, terraform first in even ones\n`,
  );
  process.stdout.write(
    `median: run --plan ${median(rows.map((r) => r.run)).toFixed(1)} s, terraform plan ${median(rows.map((r) => r.terraform)).toFixed(1)} s, ratio ${ratio.toFixed(2)} (goal <= 1.20)\n`,
  );
  rmSync(tmp, { recursive: true, force: true });
} finally {
  await proc.stop();
  rmSync(ws.dir, { recursive: true, force: true });
}
