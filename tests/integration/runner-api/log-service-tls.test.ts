/**
 * TLS between runner and log service: a CA and a server certificate made here with the openssl
 * CLI; the log service serves TLS (GRPC_TLS_CERT/KEY), the runner gets the CA through its job
 * file (GRPC_TLS_CA → tls_ca) and verifies the service with it. A whole job runs over it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { bearerMetadata, createRunnerServiceClient } from '../../../model/runner-proto';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';
import { makeTestCa } from '../../support/test-ca';

let h: Harness;
let dir: string;

let other: { ca: string };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-tls-'));
  // A CA with a certificate it signed for 127.0.0.1 and localhost, and a second, unrelated CA.
  const ca = makeTestCa(dir, 'service');
  const mine = ca.server('service', ['127.0.0.1', 'localhost']);
  other = { ca: makeTestCa(dir, 'other').ca };
  h = await startHarness({ grpcTlsCert: mine.cert, grpcTlsKey: mine.key, grpcTlsCa: ca.ca });
  await h.startWorker();
});

afterAll(async () => {
  await h?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('a job runs with its runner verifying the log service by the CA from its job file', async () => {
  const repo = jobRepo('echo "over tls ✓"');
  const { jobId, workflowId } = await h.enqueue(repo.dir, repo.sha);
  const job = await h.result(workflowId, jobId);
  expect(job.state).toBe('success');
  const texts = (await h.jobs.logLinesAfter(jobId, 0, 100)).map((l) => l.text);
  expect(texts).toContain('over tls ✓');
});

function startJob(credentials: grpc.ChannelCredentials): Promise<grpc.status> {
  const client = createRunnerServiceClient(h.logService.address, credentials);
  return new Promise<grpc.status>((resolve) => {
    client.startJob(
      { jobId: 'nobody', runnerVersion: 't', hostname: 't' },
      bearerMetadata('not-a-token'),
      { deadline: Date.now() + 10_000 },
      (err) => {
        client.close();
        resolve(err ? err.code : grpc.status.OK);
      },
    );
  });
}

test('the service answers only clients that speak TLS and trust its CA', async () => {
  const ca = fs.readFileSync(path.join(dir, 'service-ca.pem'));
  // Through TLS with the right CA the call reaches the service (which refuses the token).
  expect(await startJob(grpc.credentials.createSsl(ca))).toBe(grpc.status.UNAUTHENTICATED);
  // Plaintext, or a CA that did not sign the certificate: no connection at all.
  expect(await startJob(grpc.credentials.createInsecure())).toBe(grpc.status.UNAVAILABLE);
  expect(await startJob(grpc.credentials.createSsl(fs.readFileSync(other.ca)))).toBe(grpc.status.UNAVAILABLE);
});
