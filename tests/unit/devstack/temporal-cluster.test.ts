/**
 * The cluster config the tests and benches run temporal-server with is the deploy template
 * (infra/deploy/temporal/temporal.yaml) with this run's values: nothing left to template, every
 * service bound to and announcing the given address, the frontend address the worker service
 * dials, and no fixed metrics port that would collide between processes.
 */
import YAML from 'yaml';
import { renderClusterConfig } from '../../../devstack/temporal-cluster';
import { temporalBackends } from '../../support/temporal-backends';
import { parseTemporalFlag } from '../../../bench/temporal-backends';

const ports = {
  frontend: { grpcPort: 7001, membershipPort: 7002, httpPort: 7003 },
  history: { grpcPort: 7004, membershipPort: 7005 },
  matching: { grpcPort: 7006, membershipPort: 7007 },
  worker: { grpcPort: 7008, membershipPort: 7009 },
};

test('the deploy template rendered for one cluster of a test', () => {
  const text = renderClusterConfig({
    host: '10.9.8.1',
    pgAddress: '127.0.0.1:5432',
    pgUser: 'postgres',
    pgPassword: '',
    databases: { main: 'tc_main', visibility: 'tc_vis' },
    numHistoryShards: 8,
    ports,
    dynamicConfigFile: '/tmp/dc.yaml',
    maxConns: { main: 6, visibility: 2 },
  });
  expect(text).not.toMatch(/\{\{|enable-template/);
  const cfg = YAML.parse(text);
  expect(cfg.persistence.numHistoryShards).toBe(8);
  expect(cfg.persistence.datastores['postgres-default'].sql).toMatchObject({
    pluginName: 'postgres12',
    databaseName: 'tc_main',
    connectAddr: '127.0.0.1:5432',
    user: 'postgres',
    password: '',
    maxConns: 6,
    maxIdleConns: 6,
  });
  expect(cfg.persistence.datastores['postgres-visibility'].sql).toMatchObject({
    databaseName: 'tc_vis',
    maxConns: 2,
  });
  expect(cfg.global.membership.broadcastAddress).toBe('10.9.8.1');
  expect(cfg.global.metrics).toBeUndefined();
  expect(cfg.services.history.rpc).toEqual({ grpcPort: 7004, membershipPort: 7005, bindOnIP: '10.9.8.1' });
  expect(cfg.services.frontend.rpc.httpPort).toBe(7003);
  expect(cfg.clusterMetadata.clusterInformation.active.rpcAddress).toBe('10.9.8.1:7001');
  expect(cfg.dynamicConfigClient.filepath).toBe('/tmp/dc.yaml');
});

test('the harness switch and the bench flag name known backends only', () => {
  expect(temporalBackends({})).toEqual(['dev', 'cluster']);
  expect(temporalBackends({ SOLSTICE_TEST_TEMPORAL: 'cluster' })).toEqual(['cluster']);
  expect(() => temporalBackends({ SOLSTICE_TEST_TEMPORAL: 'dev,prod' })).toThrow(
    'SOLSTICE_TEST_TEMPORAL="dev,prod": expected a comma list of dev, cluster',
  );
  expect(parseTemporalFlag('dev, cluster-split')).toEqual(['dev', 'cluster-split']);
  expect(() => parseTemporalFlag('cluster,split')).toThrow(
    '--temporal cluster,split: expected a comma list of dev, cluster, cluster-split',
  );
});
