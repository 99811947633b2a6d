/**
 * A namespace of a test's own on the run's Temporal server, registered by hand (as an operator
 * would, with no search attributes) and usable once this returns.
 */
import type { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time';
import { waitFor } from './wait';

export async function registerTestNamespace(connection: Connection, namespace: string): Promise<void> {
  await connection.workflowService.registerNamespace({
    namespace,
    workflowExecutionRetentionPeriod: msToTs('1 day'),
  });
  // The frontend learns about new namespaces on its next refresh.
  await waitFor(
    () =>
      connection.workflowService.describeNamespace({ namespace }).then(
        () => true,
        () => false,
      ),
    30_000,
    `namespace ${namespace} to be usable`,
  );
}
