import type { Reporter, SerializedError, TestModule } from 'vitest/node';

/**
 * Ends the run with one plain line for CI logs: "tests: N passed, N failed, N skipped", then
 * the files that failed outside any test (a failed import, a failed beforeAll) and the errors
 * no test caught, when there are some, so a run that fails before any test says so.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<SerializedError> = []): void {
    const count = { passed: 0, failed: 0, skipped: 0 };
    let failedFiles = 0;
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const state = test.result().state;
        if (state === 'passed') count.passed++;
        else if (state === 'failed') count.failed++;
        else count.skipped++;
      }
      const suiteErrors = module.errors().length + [...module.children.allSuites()].reduce((n, suite) => n + suite.errors().length, 0);
      if (suiteErrors > 0) failedFiles++;
    }
    const extra = [
      failedFiles ? `${failedFiles} test files failed outside their tests` : '',
      unhandledErrors.length ? `${unhandledErrors.length} unhandled errors` : '',
    ]
      .filter(Boolean)
      .join(', ');
    process.stdout.write(`\ntests: ${count.passed} passed, ${count.failed} failed, ${count.skipped} skipped${extra ? `; ${extra}` : ''}\n`);
  }
}
