/**
 * The unit run is marked as the integration run is (leak-check.ts), so the same teardown
 * checks that no git, qemu or runner process and no planning folder of it survives. No
 * services: unit tests start what they need themselves.
 */
import { markRun } from './leak-check';

export default function unitGlobalSetup(): void {
  markRun();
}
