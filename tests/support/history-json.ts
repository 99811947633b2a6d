/**
 * A recorded run as a JSON file: its workflow id (replay needs it: child workflow ids are made
 * from it) and its history in proto3 JSON, the format `temporal workflow show --output json`
 * writes.
 *
 * Why not the SDK's historyToJSON/historyFromJSON: in this install @temporalio/common and
 * @temporalio/proto each have their own copy of protobufjs 8 (the root one is 7, for
 * @grpc/proto-loader), and protobufjs's JSON codec checks its argument with `instanceof Type`
 * against its own copy, so the SDK's functions throw "type must be a Type". The codec of the
 * copy @temporalio/proto resolves matches the History type it defines. Once npm dedupes those
 * two copies, the SDK's functions do the same and can replace this.
 */
import path from 'node:path';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

const { temporal } = proto;
type History = proto.temporal.api.history.v1.IHistory;

interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}

const protoDir = path.dirname(require.resolve('@temporalio/proto/package.json'));
// eslint-disable-next-line @typescript-eslint/no-require-imports -- resolved from @temporalio/proto's own folder
const protojson = require(require.resolve('protobufjs/ext/protojson', { paths: [protoDir] })) as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

export interface RecordedRun {
  workflowId: string;
  history: History;
}

export function recordedRunToJSON(run: RecordedRun): string {
  const history = protojson.toJson(historyType, temporal.api.history.v1.History.fromObject(run.history));
  return `${JSON.stringify({ workflowId: run.workflowId, history }, null, 2)}\n`;
}

export function recordedRunFromJSON(json: string): RecordedRun {
  const { workflowId, history } = JSON.parse(json) as { workflowId?: unknown; history?: unknown };
  if (typeof workflowId !== 'string') throw new TypeError('not a recorded run: it has no workflowId');
  // Fields a newer server adds are no reason to fail a replay.
  const loaded = protojson.fromJson(historyType, history, { ignoreUnknownFields: true }) as History | null;
  if (!loaded || !Array.isArray(loaded.events))
    throw new TypeError('not a recorded run: its history has no events');
  return { workflowId, history: loaded };
}
