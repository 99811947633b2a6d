/**
 * TLS between runner and log service: a CA and a server certificate made here with the openssl
 * CLI; the log service serves TLS (GRPC_TLS_CERT/KEY), the runner gets the CA through its job
 * file (GRPC_TLS_CA → tls_ca) and verifies the service with it. A whole job runs over it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { bearerMetadata, createRunnerServiceClient } from '../../../model/runner-proto';
import { jobRepo } from '../../support/git-repo';
import { startHarness, type Harness } from '../../support/harness';

let h: Harness;
let dir: string;

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

/** A CA, and a certificate it signed for 127.0.0.1 and localhost. Returns the file paths. */
function makeCertificates(name: string): { ca: string; cert: string; key: string } {
  openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    `/CN=${name} test CA`,
    '-keyout',
    `${name}-ca.key`,
    '-out',
    `${name}-ca.pem`,
  );
  openssl(
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
  );
  fs.writeFileSync(path.join(dir, `${name}.ext`), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  openssl(
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    `${name}-ca.pem`,
    '-CAkey',
    `${name}-ca.key`,
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    `${name}.ext`,
    '-out',
    `${name}.pem`,
  );
  return {
    ca: path.join(dir, `${name}-ca.pem`),
    cert: path.join(dir, `${name}.pem`),
    key: path.join(dir, `${name}.key`),
  };
}

let other: { ca: string };

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'solstice-tls-'));
  const mine = makeCertificates('service');
  other = makeCertificates('other');
  h = await startHarness({ grpcTlsCert: mine.cert, grpcTlsKey: mine.key, grpcTlsCa: mine.ca });
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
