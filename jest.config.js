// Two projects: `unit` (beside the code, fake client, hand-driven clock) and
// `integration` (test/, against the real local control plane that globalSetup starts once).
// babel-jest only strips types (ESM stays ESM); `npm run typecheck` checks them. See docs/adr/0002.
const transform = {
  '^.+\\.ts$': [
    'babel-jest',
    {
      babelrc: false,
      configFile: false,
      presets: [['@babel/preset-typescript', { onlyRemoveTypeImports: true }]],
    },
  ],
};
const common = {
  transform,
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  testEnvironment: 'node',
};

/** @type {import('jest').Config} */
export default {
  // A test that times out is abandoned, not unwound: its finally blocks (an informer's stop, a
  // proxy's refuse window) never run, and the handles they would have closed kept Jest from
  // exiting after a failed run until CI's 90-minute limit. Failures must end the run.
  forceExit: true,
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: [
        '<rootDir>/lib/**/*.test.ts',
        '<rootDir>/controllers/**/*.test.ts',
        '<rootDir>/scripts/**/*.test.ts',
        // Only the chart renderer and statistics; the benchmarks themselves are npm run bench.
        '<rootDir>/test/bench/**/*.test.ts',
        // Pure checkers of the integration tests (e.g. the leader-churn audit check).
        '<rootDir>/test/support/**/*.test.ts',
      ],
    },
    {
      ...common,
      displayName: 'integration',
      // Only runs when integration tests are selected: one control plane for the whole run.
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/e2e/**/*.test.ts'],
      slowTestThreshold: 30,
    },
  ],
};
