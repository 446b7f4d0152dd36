// Tests are written in TypeScript and compiled by `tsc` (npm run build) into dist/;
// jest runs the compiled ES modules directly (no transform), so what is tested is
// exactly what ships.
import { availableParallelism } from 'node:os';

/** @type {import('jest').Config} */
const common = { transform: {}, testEnvironment: 'node', setupFiles: ['<rootDir>/test/setup.cjs'] };
export default {
  // integration tests start real moto_server/terraform/sshd processes
  testTimeout: 600_000,
  // Two test files at a time even on 2 cores (jest's default is cores - 1): the long files
  // mostly wait on terraform, moto and etcd (a serial run kept 0.8 of 2 cores busy), so two
  // workers cut CI from 28 to about 17 min. Test files share nothing but the node harness's
  // mount points, which are reference-counted (test/nodes/harness.ts, acquireSharedDirs).
  maxWorkers: Math.max(2, Math.min(4, availableParallelism() - 1)),
  testSequencer: '<rootDir>/jest.sequencer.js',
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/dist/test/unit/**/*.test.js'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/dist/test/integration/**/*.test.js'] },
    // test hosts of network namespaces, real etcd (test/nodes/harness.ts); needs root
    { ...common, displayName: 'nodes', testMatch: ['<rootDir>/dist/test/nodes/**/*.test.js'] },
  ],
};
