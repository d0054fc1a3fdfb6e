import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // the VM tests boot qemu: npm run test:vm (vitest.vm.config.ts)
    exclude: ['test/vm/**', '**/node_modules/**'],
    globalSetup: ['test/support/global-setup.ts'],
    reporters: ['default', './test/support/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Integration tests start real processes and brokers; two cores, so keep it modest.
    maxWorkers: 2,
  },
});
