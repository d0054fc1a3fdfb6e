import { defineConfig } from 'vitest/config';

// The VM tests (npm run test:vm): each boots a Linux VM under qemu (TCG), so they run one at a
// time, with generous limits, apart from npm test's suite.
export default defineConfig({
  test: {
    include: ['test/vm/**/*.test.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 240_000,
    hookTimeout: 240_000,
    fileParallelism: false,
  },
});
