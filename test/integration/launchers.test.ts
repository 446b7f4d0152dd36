import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { DescribeImagesCommand, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { AwsClients } from '../../src/aws/clients.js';
import { type ExecResult, exec } from '../../src/exec/index.js';
import { useMoto } from '../helpers/moto.js';

/**
 * The launchers, run for real: ./run.kube and ./play.kube in a throw-away copy of the
 * checkout (launchers, environments/ and docker/ copied; dist/, node_modules/, scripts/,
 * platform/ and package.json linked), so that play-$USER.env, secrets/ and the container
 * homes are created there and never in the repository. Docker mode runs against a fake
 * `docker` first on PATH (there is no engine here): it records what `docker run` gets.
 */

const REPO = path.resolve(import.meta.dirname, '..', '..', '..');
const VERSION = (JSON.parse(readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string })
  .version;

/** Variables of the outer environment that would make a run depend on who runs the tests. */
const CLEAN: Record<string, undefined> = {
  AWS_PROFILE: undefined,
  AWS_DEFAULT_PROFILE: undefined,
  AWS_CONFIG_FILE: undefined,
  AWS_SHARED_CREDENTIALS_FILE: undefined,
  AWS_SESSION_TOKEN: undefined,
  AWS_REGION: undefined,
  AWS_DEFAULT_REGION: undefined,
  SSH_AUTH_SOCK: undefined,
  PLATFORM_ENV: undefined,
  PLATFORM_WORKDIR: undefined,
  PLATFORM_SECRETS_DIR: undefined,
  PLATFORM_IMAGE: undefined,
  PLATFORM_DEBUG: undefined,
};

interface Sandbox {
  dir: string;
  home: string;
  /** runs ./<launcher> ARGS in the sandbox as user `tester` with HOME in the sandbox */
  launch(
    launcher: 'run.kube' | 'play.kube',
    args: string[],
    env?: Record<string, string | undefined>,
    input?: string,
  ): Promise<ExecResult>;
}

const sandboxes: string[] = [];
afterAll(() => {
  // the links to dist/, node_modules/... are removed, never followed
  for (const dir of sandboxes) rmSync(dir, { recursive: true, force: true });
});

function sandbox(): Sandbox {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kp-launch-'));
  sandboxes.push(dir);
  for (const f of ['run.kube', 'play.kube']) cpSync(path.join(REPO, f), path.join(dir, f));
  cpSync(path.join(REPO, 'docker'), path.join(dir, 'docker'), { recursive: true });
  // the committed environments only (no personal play-*.env of whoever runs the tests)
  cpSync(path.join(REPO, 'environments'), path.join(dir, 'environments'), {
    recursive: true,
    filter: (src) => !/play-[^/]*\.env$/.test(src),
  });
  for (const f of ['dist', 'node_modules', 'scripts', 'platform', 'package.json']) {
    symlinkSync(path.join(REPO, f), path.join(dir, f));
  }
  const home = path.join(dir, 'home');
  mkdirSync(home);
  return {
    dir,
    home,
    launch: (launcher, args, env = {}, input) =>
      exec(path.join(dir, launcher), args, {
        cwd: dir,
        env: { ...CLEAN, HOME: home, USER: 'tester', ...env },
        reject: false,
        timeoutMs: 120_000,
        ...(input === undefined ? {} : { input }),
      }),
  };
}

/**
 * A stand-in for the docker CLI: `info` fails unless FAKE_DOCKER_ENGINE=up, `image
 * inspect` fails when FAKE_DOCKER_IMAGE=missing, `run` records its arguments
 * (NUL-separated) and its environment, then exits FAKE_DOCKER_EXIT.
 * @returns the directory to put first on PATH
 */
function fakeDocker(dir: string): string {
  const bin = path.join(dir, 'fake-bin');
  mkdirSync(bin);
  writeFileSync(
    path.join(bin, 'docker'),
    `#!/usr/bin/env bash
case "$1" in
  info) [ "\${FAKE_DOCKER_ENGINE:-}" = up ] || { echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock" >&2; exit 1; } ;;
  image) [ "\${FAKE_DOCKER_IMAGE:-}" != missing ] || { echo "Error: No such image: $3" >&2; exit 1; } ;;
  run) shift; printf '%s\\0' "$@" >"$FAKE_DOCKER_LOG.args"; env -0 >"$FAKE_DOCKER_LOG.env"; exit "\${FAKE_DOCKER_EXIT:-0}" ;;
  *) echo "fake docker: unexpected: $*" >&2; exit 99 ;;
esac
`,
    { mode: 0o755 },
  );
  return bin;
}

/** What the fake docker recorded: `docker run` arguments and environment. */
function recorded(log: string): { args: string[]; env: Map<string, string> } {
  const args = readFileSync(`${log}.args`, 'utf8').split('\0').slice(0, -1);
  const env = new Map<string, string>();
  for (const kv of readFileSync(`${log}.env`, 'utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) env.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return { args, env };
}

/** The values following each occurrence of `flag` in an argument list. */
function flagValues(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag && i + 1 < args.length ? [args[i + 1]!] : []));
}

describe('arguments and environments', () => {
  const sb = sandbox();

  test('--help shows the usage with examples and exit codes, exit 0', async () => {
    const run = await sb.launch('run.kube', ['--help']);
    expect(run.exitCode).toBe(0);
    expect(run.stdout).toContain('./run.kube -e prod -- run --plan');
    expect(run.stdout).toMatch(/Examples:/);
    expect(run.stdout).toMatch(/Exit codes: the command's own/);
    const play = await sb.launch('play.kube', ['--help']);
    expect(play.exitCode).toBe(0);
    expect(play.stdout).toContain('./play.kube --local -- run --yes');
    expect(play.stdout).toMatch(/Exit codes:/);
  });

  test('an unknown environment lists the available ones (not the play template) and exits 2', async () => {
    const r = await sb.launch('run.kube', ['-e', 'nope', '--native', '--', 'true']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('unknown environment "nope": environments/nope.env does not exist');
    expect(r.stderr).toMatch(/^hint: available environments: example-prod$/m);
  });

  test('no -e exits 2 and lists the environments; so do a bad name and the template name', async () => {
    const none = await sb.launch('run.kube', ['--native', '--', 'true']);
    expect(none.exitCode).toBe(2);
    expect(none.stderr).toContain('an environment is required: -e ENV');
    expect(none.stderr).toContain('available environments: example-prod');
    const bad = await sb.launch('run.kube', ['-e', 'Prod;rm', '--native', '--', 'true']);
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('invalid environment name');
    const template = await sb.launch('run.kube', ['-e', 'play', '--native', '--', 'true']);
    expect(template.exitCode).toBe(2);
    expect(template.stderr).toContain('use ./play.kube');
  });

  test('a command without -- and play.kube with -e are refused with exit 2', async () => {
    const r = await sb.launch('run.kube', ['-e', 'example-prod', 'run', '--plan']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('unknown argument: run');
    const p = await sb.launch('play.kube', ['-e', 'example-prod']);
    expect(p.exitCode).toBe(2);
    expect(p.stderr).toContain('./run.kube -e ENV');
  });
});

describe('docker mode', () => {
  const sb = sandbox();
  const bin = fakeDocker(sb.dir);
  const log = path.join(sb.dir, 'docker-run');
  const PATH = `${bin}:${process.env.PATH}`;

  test('without a Docker engine it says so, suggests --native and exits 2', async () => {
    for (const args of [
      ['-e', 'example-prod'],
      ['-e', 'example-prod', '--', 'run', '--plan'],
    ]) {
      const r = await sb.launch('run.kube', args, { PATH });
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toContain('no Docker engine is reachable');
      expect(r.stderr).toContain('--native');
    }
  });

  test('an image that is not built is reported with the command that builds it, exit 2', async () => {
    const r = await sb.launch('run.kube', ['-e', 'example-prod'], {
      PATH,
      FAKE_DOCKER_ENGINE: 'up',
      FAKE_DOCKER_IMAGE: 'missing',
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`the image kube-platform:${VERSION} is not built`);
    expect(r.stderr).toContain('make');
  });

  test('docker run gets the mounts, the host UID/GID, the agent socket and credentials by name only; the exit code passes through', async () => {
    const sock = path.join(sb.dir, 'agent.sock');
    const agent = net.createServer().listen(sock);
    await new Promise((r) => agent.once('listening', r));
    mkdirSync(path.join(sb.home, '.aws'));
    const secret = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY';
    const token = 'IQoJb3JpZ2luX2VjEXAMPLESESSIONTOKEN';
    try {
      const r = await sb.launch('play.kube', ['--', 'run', '--plan'], {
        PATH,
        FAKE_DOCKER_ENGINE: 'up',
        FAKE_DOCKER_LOG: log,
        FAKE_DOCKER_EXIT: '9',
        AWS_ACCESS_KEY_ID: 'AKIAIOSFODNN7EXAMPLE',
        AWS_SECRET_ACCESS_KEY: secret,
        AWS_SESSION_TOKEN: token,
        AWS_ENDPOINT_URL: undefined,
        SSH_AUTH_SOCK: sock,
      });
      expect(r.exitCode).toBe(9);
      const { args, env } = recorded(log);
      // the image, then the command
      expect(args.slice(-3)).toEqual([`kube-platform:${VERSION}`, 'run', '--plan']);
      expect(args.slice(0, 2)).toEqual(['--rm', '-i']); // after `docker run`
      expect(args).not.toContain('--tty'); // no TTY here: a pipe must not get one
      expect(flagValues(args, '--user')).toEqual([`${process.getuid!()}:${process.getgid!()}`]);
      const volumes = flagValues(args, '--volume');
      expect(volumes).toEqual(
        expect.arrayContaining([
          `${sb.dir}/environments:/platform/environments`,
          `${sb.dir}/platform:/platform/platform`,
          `${sb.dir}/secrets/play-tester:/platform/secrets`,
          `${sb.dir}/.platform/play-tester:/platform/.platform/play-tester`,
          `${sb.dir}/secrets/.home/play-tester:/home/platform`,
          `${sb.home}/.aws:/home/platform/.aws:ro`,
          `${sock}:/run/ssh-agent.sock`,
        ]),
      );
      const envs = flagValues(args, '--env');
      expect(envs).toEqual(
        expect.arrayContaining([
          'HOME=/home/platform',
          'PLATFORM_ENV',
          'PLATFORM_SECRETS_DIR=/platform/secrets',
          'PLATFORM_WORKDIR=/platform',
          'SSH_AUTH_SOCK=/run/ssh-agent.sock',
          'AWS_ACCESS_KEY_ID',
          'AWS_SECRET_ACCESS_KEY',
          'AWS_SESSION_TOKEN',
        ]),
      );
      // secrets never in the argument list (ps): docker takes them from its environment
      expect(args.join(' ')).not.toContain(secret);
      expect(args.join(' ')).not.toContain(token);
      expect(env.get('AWS_SECRET_ACCESS_KEY')).toBe(secret);
      expect(env.get('AWS_SESSION_TOKEN')).toBe(token);
      expect(env.get('PLATFORM_ENV')).toBe('play-tester');
      // keys exported: no profile next to them (the SDK would prefer the profile)
      expect(env.has('AWS_PROFILE')).toBe(false);
      expect(envs).not.toContain('AWS_PROFILE');
      // the play environment was created, the per-environment dirs are private to the operator
      expect(statSync(path.join(sb.dir, 'environments', 'play-tester.env')).isFile()).toBe(true);
      for (const d of ['secrets/play-tester', 'secrets/.home/play-tester', '.platform/play-tester']) {
        expect(statSync(path.join(sb.dir, d)).mode & 0o777).toBe(0o700);
      }
    } finally {
      agent.close();
    }
  });

  test('--image picks the image; a local endpoint gets the host network; a shell gets no command', async () => {
    const r = await sb.launch(
      'run.kube',
      ['-e', 'example-prod', '--image', 'registry.example.com/team/kube-platform:9.9.9'],
      {
        PATH,
        FAKE_DOCKER_ENGINE: 'up',
        FAKE_DOCKER_LOG: log,
        AWS_ENDPOINT_URL: 'http://127.0.0.1:4566',
      },
    );
    expect(r.exitCode).toBe(0);
    const { args } = recorded(log);
    expect(args.at(-1)).toBe('registry.example.com/team/kube-platform:9.9.9');
    expect(flagValues(args, '--network')).toEqual(['host']);
    expect(flagValues(args, '--env')).toContain('AWS_ENDPOINT_URL');
  });
});

describe('native mode', () => {
  const moto = useMoto();

  test('./play.kube --native -- aws-instances --json prints the environment as JSON; play-$USER.env is created on first use', async () => {
    const sb = sandbox();
    const aws = new AwsClients({ region: 'eu-west-1', endpoint: moto.endpoint });
    const ec2 = await aws.ec2();
    const images = await ec2.send(new DescribeImagesCommand({ Owners: ['amazon'] }));
    const imageId = images.Images?.[0]?.ImageId;
    expect(imageId).toBeDefined();
    const tagged = (env: string, name: string) =>
      ec2.send(
        new RunInstancesCommand({
          ImageId: imageId,
          InstanceType: 't3.micro',
          MinCount: 1,
          MaxCount: 1,
          TagSpecifications: [
            {
              ResourceType: 'instance',
              Tags: [
                { Key: 'Environment', Value: env },
                { Key: 'Name', Value: name },
                { Key: 'Layer', Value: 'bastion' },
              ],
            },
          ],
        }),
      );
    const mine = (await tagged('play-tester', 'play-tester-bastion')).Instances![0]!;
    await tagged('someone-else', 'other-bastion');
    aws.destroy();

    const r = await sb.launch('play.kube', ['--native', '--', 'aws-instances', '--json'], moto.env);
    expect(r.stderr).toContain('play.kube: created environments/play-tester.env from play.env');
    expect(r.exitCode).toBe(0);
    const rows = JSON.parse(r.stdout) as {
      name: string;
      instanceId: string;
      privateIp: string | null;
      layer: string;
    }[];
    expect(rows).toEqual([
      expect.objectContaining({
        name: 'play-tester-bastion',
        instanceId: mine.InstanceId,
        privateIp: mine.PrivateIpAddress,
        layer: 'bastion',
      }),
    ]);
    const created = readFileSync(path.join(sb.dir, 'environments', 'play-tester.env'), 'utf8');
    expect(created).toContain(readFileSync(path.join(REPO, 'environments', 'play.env'), 'utf8'));
    expect(created.split('\n')[0]).toMatch(/^# play-tester: your playground, created from play\.env/);

    // a second run uses the (modified) file as it is: never overwritten
    const file = path.join(sb.dir, 'environments', 'play-tester.env');
    const modified = created.replace('WORKER_COUNT=2', 'WORKER_COUNT=3');
    expect(modified).not.toBe(created);
    writeFileSync(file, modified);
    const again = await sb.launch(
      'play.kube',
      ['--native', '--', 'sh', '-c', 'echo "$PLATFORM_ENV"'],
      moto.env,
    );
    expect(again.exitCode).toBe(0);
    expect(again.stdout).toBe('play-tester');
    expect(again.stderr).not.toContain('created');
    expect(readFileSync(file, 'utf8')).toBe(modified);
  });

  test('--local exports the local AWS (an AWS_ENDPOINT_URL given is used as is) and drops any profile', async () => {
    const sb = sandbox();
    const show = [
      '--local',
      '--',
      'sh',
      '-c',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, not a template
      'echo "$AWS_ENDPOINT_URL ${AWS_PROFILE:-<unset>} $PLATFORM_LAUNCH"',
    ];
    const r = await sb.launch('play.kube', show, { ...moto.env, AWS_PROFILE: 'play' });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe(`${moto.endpoint} <unset> local`);
    const json = await sb.launch('play.kube', ['--local', '--', 'aws-instances', '--json'], moto.env);
    expect(json.exitCode).toBe(0);
    expect(JSON.parse(json.stdout)).toEqual([]);
  });

  test('the playground name comes from $USER: lower-cased, other characters as -', async () => {
    const sb = sandbox();
    const r = await sb.launch('play.kube', ['--native', '--', 'sh', '-c', 'echo "$PLATFORM_ENV"'], {
      USER: 'Alice.Smith_',
    });
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toBe('play-alice-smith');
    const bad = await sb.launch('play.kube', ['--native', '--', 'true'], { USER: '...' });
    expect(bad.exitCode).toBe(2);
    expect(bad.stderr).toContain('cannot derive a playground name');
  });

  test('exit codes pass through: false exits 1, sh -c "exit 7" exits 7', async () => {
    const sb = sandbox();
    expect((await sb.launch('run.kube', ['-e', 'example-prod', '--native', '--', 'false'])).exitCode).toBe(1);
    expect(
      (await sb.launch('run.kube', ['-e', 'example-prod', '--native', '--', 'sh', '-c', 'exit 7'])).exitCode,
    ).toBe(7);
  });

  test("the environment's profile is selected only when it exists and the caller exports no keys", async () => {
    const sb = sandbox();
    // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansions, not a template
    const show = ['--native', '--', 'sh', '-c', 'echo "${AWS_PROFILE-<unset>} ${AWS_REGION-<unset>}"'];
    const noKeys = {
      AWS_ACCESS_KEY_ID: undefined,
      AWS_SECRET_ACCESS_KEY: undefined,
      AWS_ENDPOINT_URL: undefined,
    };
    // no ~/.aws: nothing selected (the SDK chain decides), the region comes from the file
    expect((await sb.launch('play.kube', show, noKeys)).stdout).toBe('<unset> eu-west-1');
    mkdirSync(path.join(sb.home, '.aws'));
    writeFileSync(
      path.join(sb.home, '.aws', 'config'),
      '[profile play]\nregion = eu-west-1\n[profile example-prod]\n',
    );
    expect((await sb.launch('play.kube', show, noKeys)).stdout).toBe('play eu-west-1');
    // exported keys win: no AWS_PROFILE next to them
    expect((await sb.launch('play.kube', show, { ...noKeys, AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE' })).stdout).toBe(
      '<unset> eu-west-1',
    );
    // an explicit AWS_PROFILE and region of the caller are kept
    expect(
      (await sb.launch('play.kube', show, { ...noKeys, AWS_PROFILE: 'mine', AWS_REGION: 'us-east-2' }))
        .stdout,
    ).toBe('mine us-east-2');
  });

  test('a shell shows who it acts as, then the prompt [ENV@platform] (branch) $', async () => {
    const sb = sandbox();
    await exec('git', ['init', '-q', '-b', 'feature-x'], { cwd: sb.dir });
    const r = await sb.launch('play.kube', ['--native'], moto.env, 'echo "marker-$((6 * 7))"\nexit 5\n');
    expect(r.exitCode).toBe(5);
    expect(r.stdout).toContain('marker-42');
    expect(r.stderr).toContain('--> kube-platform: environment play-tester, this host (native)');
    // moto's identity: account 123456789012
    expect(r.stderr).toMatch(/--> acting as arn:aws:\S+::123456789012:\S+ \(account 123456789012\)/);
    const prompt = process.getuid!() === 0 ? '#' : '$';
    expect(r.stderr).toContain(`[play-tester@platform] (feature-x) ${prompt} echo`);
    // identity first, prompt after
    expect(r.stderr.indexOf('--> acting as')).toBeLessThan(r.stderr.indexOf('[play-tester@platform]'));
  });
});

describe('a mistyped command (issue 11 item 18)', () => {
  test('./play.kube --native -- bogus lists the commands and exits 2, not 127', async () => {
    const sb = sandbox();
    const r = await sb.launch('play.kube', ['--native', '--', 'bogus']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('unknown command: bogus');
    expect(r.stderr).toMatch(/commands: .*upload-secrets/);
    expect(r.stderr).not.toContain('kube-platform ');
  });

  test("the container's entrypoint does the same", async () => {
    const sb = sandbox();
    const r = await exec('bash', [path.join(sb.dir, 'docker', 'entrypoint.sh'), 'bogus'], {
      cwd: sb.dir,
      env: { ...CLEAN, HOME: sb.home, PATH: `${path.join(REPO, 'scripts')}:${process.env.PATH}` },
      reject: false,
    });
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain('unknown command: bogus');
    expect(r.stderr).toMatch(/commands: .*run .*upload-secrets/);
  });
});
