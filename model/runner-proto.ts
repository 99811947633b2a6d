/**
 * The single place that loads proto/runner/v1/runner.proto (package runner.v1).
 *
 * The protocol is loaded from generated/proto/runner-descriptor.ts, a JSON descriptor that
 * `npm run gen` (scripts/gen-proto-types.mjs) produces from the .proto together with the
 * TypeScript types, instead of from the .proto file at run time. That way the bundled runner
 * (dist/runner/runner.js, copied alone into a VM) carries the protocol inside itself, and
 * services, tests and the runner all load it by the same code path. The unit tests check that
 * the descriptor is not stale against the .proto.
 *
 * Options (keep in sync with GEN_ARGS in scripts/gen-proto-types.mjs): field names in camelCase
 * (`jobId`, `persistedThroughSeq`), 64-bit integers as JS numbers (sequence numbers and
 * milliseconds stay far below 2^53), enums as their string names, defaults filled in, oneofs.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../generated/proto/runner';
import { RUNNER_PROTO_JSON } from '../generated/proto/runner-descriptor';
import type {
  RunnerServiceClient,
  RunnerServiceDefinition,
} from '../generated/proto/runner/v1/RunnerService';

// Each message's type and its decoded `__Output` form; the enums as values too.
export type * from '../generated/proto/runner/v1/RunnerService';
export type * from '../generated/proto/runner/v1/StartJobRequest';
export type * from '../generated/proto/runner/v1/StartJobResponse';
export type * from '../generated/proto/runner/v1/LogBatch';
export type * from '../generated/proto/runner/v1/LogLine';
export type * from '../generated/proto/runner/v1/LogAck';
export type * from '../generated/proto/runner/v1/FinishJobRequest';
export type * from '../generated/proto/runner/v1/FinishJobResponse';
export type * from '../generated/proto/runner/v1/StepResult';
export type * from '../generated/proto/runner/v1/ReportStepRequest';
export type * from '../generated/proto/runner/v1/HeartbeatRequest';
export type * from '../generated/proto/runner/v1/WaitForAssignmentRequest';
export type * from '../generated/proto/runner/v1/WaitForAssignmentResponse';
export type * from '../generated/proto/runner/v1/ArtifactChunk';
export type * from '../generated/proto/runner/v1/ArtifactHeader';
export type * from '../generated/proto/runner/v1/ArtifactUploaded';
export * from '../generated/proto/runner/v1/FinishReason';
export * from '../generated/proto/runner/v1/StepOutcome';
export * from '../generated/proto/runner/v1/LogStream';

export const RUNNER_PROTO_OPTIONS = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
} as const satisfies protoLoader.Options;

/** Fully qualified service name, as it appears in method paths (`/runner.v1.RunnerService/StartJob`). */
export const RUNNER_SERVICE_NAME = 'runner.v1.RunnerService';

/** Metadata key carrying `Bearer <per-job token>` on every call. */
export const AUTHORIZATION_METADATA_KEY = 'authorization';

let packageDefinition: protoLoader.PackageDefinition | undefined;
let grpcObject: ProtoGrpcType | undefined;

/** The proto-loader package definition of runner.v1 (loaded once). */
export function loadRunnerPackageDefinition(): protoLoader.PackageDefinition {
  packageDefinition ??= protoLoader.fromJSON(RUNNER_PROTO_JSON, RUNNER_PROTO_OPTIONS);
  return packageDefinition;
}

/** The typed grpc object: `runnerProto().runner.v1.RunnerService` is the client constructor. */
export function runnerProto(): ProtoGrpcType {
  // loadPackageDefinition returns an untyped GrpcObject; ProtoGrpcType is its generated shape.
  grpcObject ??= grpc.loadPackageDefinition(loadRunnerPackageDefinition()) as unknown as ProtoGrpcType;
  return grpcObject;
}

/** For `server.addService(runnerServiceDefinition(), handlers)`. */
export function runnerServiceDefinition(): RunnerServiceDefinition {
  return runnerProto().runner.v1.RunnerService.service;
}

/** A RunnerService client for `address` (host:port); plaintext unless credentials are given. */
export function createRunnerServiceClient(
  address: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options?: grpc.ChannelOptions,
): RunnerServiceClient {
  const Client = runnerProto().runner.v1.RunnerService;
  return new Client(address, credentials, options);
}

/** Call metadata carrying the per-job token. */
export function bearerMetadata(token: string): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(AUTHORIZATION_METADATA_KEY, `Bearer ${token}`);
  return md;
}

/** The token from `authorization: Bearer <token>` metadata, or undefined when absent or malformed. */
export function bearerTokenFrom(metadata: grpc.Metadata): string | undefined {
  const [value] = metadata.get(AUTHORIZATION_METADATA_KEY);
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return m?.[1];
}
