/**
 * Reported in StartJob and by `runner.js --version`. A constant rather than a read of
 * package.json so the bundle stays one file; a unit test keeps it equal to package.json's.
 */
export const RUNNER_VERSION = '0.1.0';
