import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { RUNNER_PROTO_SOURCE_SHA256 } from '../../../generated/proto/runner-descriptor';
import {
  bearerMetadata,
  bearerTokenFrom,
  FinishReason,
  loadRunnerPackageDefinition,
  RUNNER_PROTO_OPTIONS,
  RUNNER_SERVICE_NAME,
  runnerServiceDefinition,
} from '../../../model/runner-proto';
import { RUNNER_VERSION } from '../../../runner/version';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const PROTO = path.join(ROOT, 'proto', 'runner', 'v1', 'runner.proto');

describe('runner proto', () => {
  test('the generated descriptor matches proto/runner/v1/runner.proto (else: npm run gen)', () => {
    const sha = createHash('sha256').update(readFileSync(PROTO)).digest('hex');
    expect(RUNNER_PROTO_SOURCE_SHA256).toBe(sha);
  });

  test('loading from the embedded descriptor equals loading the .proto file', () => {
    const fromFile = protoLoader.loadSync(PROTO, RUNNER_PROTO_OPTIONS);
    const embedded = loadRunnerPackageDefinition();
    expect(Object.keys(embedded).sort()).toEqual(Object.keys(fromFile).sort());
    const svc = embedded[RUNNER_SERVICE_NAME] as protoLoader.ServiceDefinition;
    const fileSvc = fromFile[RUNNER_SERVICE_NAME] as protoLoader.ServiceDefinition;
    for (const name of ['StartJob', 'StreamLogs', 'FinishJob']) {
      expect(svc[name].path).toBe(`/${RUNNER_SERVICE_NAME}/${name}`);
      expect(svc[name].path).toBe(fileSvc[name].path);
      expect(svc[name].requestStream).toBe(fileSvc[name].requestStream);
      expect(svc[name].responseStream).toBe(fileSvc[name].responseStream);
    }
    // Same wire bytes both ways, with camelCase fields, numbers for 64-bit ints and enum names.
    const req = {
      jobId: 'j',
      reason: 'FINISH_REASON_EXITED',
      exitCode: 3,
      message: '',
      lastSeq: 12345678901,
      durationMs: 42,
    };
    const bytes = svc.FinishJob.requestSerialize(req);
    expect(bytes.equals(fileSvc.FinishJob.requestSerialize(req))).toBe(true);
    // A FinishJob from a runner older than steps (or outputs) decodes with an empty step list (and no outputs).
    expect(fileSvc.FinishJob.requestDeserialize(bytes)).toEqual({ ...req, steps: [], outputs: {} });
    const step = {
      index: 1,
      name: 'build',
      outcome: 'STEP_OUTCOME_FAILURE',
      exitCode: 2,
      continueOnError: true,
      startedUnixMs: 1_700_000_000_000,
      durationMs: 5,
      firstSeq: 3,
      lastSeq: 9,
    };
    const withSteps = svc.FinishJob.requestSerialize({ ...req, steps: [step] });
    expect(fileSvc.FinishJob.requestDeserialize(withSteps)).toEqual({ ...req, steps: [step], outputs: {} });
  });

  test('the service definition has the seven methods', () => {
    expect(Object.keys(runnerServiceDefinition()).sort()).toEqual([
      'FinishJob',
      'Heartbeat',
      'ReportStep',
      'StartJob',
      'StreamLogs',
      'UploadArtifact',
      'WaitForAssignment',
    ]);
    expect(FinishReason.FINISH_REASON_CHECKOUT_FAILED).toBe('FINISH_REASON_CHECKOUT_FAILED');
  });

  test('bearer metadata round-trips and malformed values are refused', () => {
    expect(bearerTokenFrom(bearerMetadata('abc.def'))).toBe('abc.def');
    const md = new grpc.Metadata();
    expect(bearerTokenFrom(md)).toBeUndefined();
    md.set('authorization', 'Basic abc');
    expect(bearerTokenFrom(md)).toBeUndefined();
    md.set('authorization', 'bearer  tok ');
    expect(bearerTokenFrom(md)).toBe('tok');
  });

  test('RUNNER_VERSION follows package.json', () => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
    expect(RUNNER_VERSION).toBe(pkg.version);
  });
});
