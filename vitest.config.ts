import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Namespace tests spawn real processes and wait on real kernel timers.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: run files two at a time so timing-sensitive kernel tests are not starved.
    maxWorkers: 2,
    reporters: ['default'],
  },
});
