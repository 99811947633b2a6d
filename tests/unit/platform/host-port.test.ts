import { workflowUiUrl } from '../../../cli/pipelines';
import { loadConfig } from '../../../platform/config';
import { ConfigError } from '../../../platform/errors';
import { joinHostPort, splitHostPort } from '../../../platform/net';

test('host:port addresses: names, IPv4, bracketed IPv6, and the error names the address', () => {
  expect(splitHostPort('localhost:0')).toEqual({ host: 'localhost', port: 0 });
  expect(splitHostPort('10.0.0.2:7233')).toEqual({ host: '10.0.0.2', port: 7233 });
  expect(splitHostPort('[::1]:50051')).toEqual({ host: '::1', port: 50051 });
  for (const bad of ['8088', '::1:8088', 'host:99999', 'host:', ' host:1'])
    expect(() => splitHostPort(bad, 'GRPC_ADDR')).toThrow(ConfigError);
  expect(() => splitHostPort('nope', 'GRPC_ADDR')).toThrow(
    'GRPC_ADDR must be host:port (e.g. 127.0.0.1:8088), got "nope"',
  );
  expect(joinHostPort('::1', 8233)).toBe('[::1]:8233');
  expect(joinHostPort('127.0.0.1', 8233)).toBe('127.0.0.1:8233');
  for (const addr of ['127.0.0.1:1', '[::1]:2']) {
    const { host, port } = splitHostPort(addr);
    expect(joinHostPort(host, port)).toBe(addr);
  }
});

test('the Web UI link is given for a local Temporal only, IPv6 in brackets', () => {
  const url = (addr: string) => workflowUiUrl(loadConfig({ temporalAddress: addr }, {}), 'job/1');
  expect(url('127.0.0.1:7233')).toBe('http://127.0.0.1:8233/namespaces/default/workflows/job%2F1');
  expect(url('[::1]:7233')).toBe('http://[::1]:8233/namespaces/default/workflows/job%2F1');
  expect(url('temporal.internal:7233')).toBeUndefined();
});
