import type { Config } from 'jest';

// ESM + TypeScript: ts-jest transpiles each file on its own (type checking is `npm run typecheck`),
// and Node runs the result as ES modules (`--experimental-vm-modules`, set by `npm run jest`).
const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { useESM: true, diagnostics: false }],
  },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  setupFilesAfterEnv: ['<rootDir>/test/support/after-env.ts'],
  // Generous: some files synthesize the CDK stack in beforeAll, which is slow on a loaded 2-core machine.
  testTimeout: 120_000,
  maxWorkers: 2,
};

export default config;
