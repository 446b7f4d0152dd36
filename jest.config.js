// Tests are written in TypeScript and compiled by `tsc` (npm run build) into dist/;
// jest runs the compiled ES modules directly (no transform), so what is tested is
// exactly what ships.
/** @type {import('jest').Config} */
const common = { transform: {}, testEnvironment: 'node', setupFiles: ['<rootDir>/test/setup.cjs'] };
export default {
  // integration tests start real moto_server/terraform/sshd processes
  testTimeout: 600_000,
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/dist/test/unit/**/*.test.js'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/dist/test/integration/**/*.test.js'] },
    // test hosts of network namespaces, real etcd (test/nodes/harness.ts); needs root
    { ...common, displayName: 'nodes', testMatch: ['<rootDir>/dist/test/nodes/**/*.test.js'] },
  ],
};
