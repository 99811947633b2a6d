/**
 * The drain protocol of every service: first signal drains, a second one forces. Signals are
 * delivered with process.emit, which runs the same listeners a real signal would.
 */
import { StopSignals } from '../../../platform/shutdown';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => undefined;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const tick = () => new Promise((r) => setImmediate(r));

test('the first SIGTERM drains and returns 0; a second one during the drain forces exit 143', async () => {
  const drain = deferred();
  const stop = jest.fn(() => drain.promise);
  const exit = jest.fn();
  const before = process.listenerCount('SIGTERM');
  const serving = new StopSignals({ exit }).serve(stop);
  await tick();
  expect(stop).not.toHaveBeenCalled();

  process.emit('SIGTERM');
  await tick();
  expect(stop).toHaveBeenCalledTimes(1);
  expect(exit).not.toHaveBeenCalled();

  process.emit('SIGTERM');
  expect(exit).toHaveBeenCalledWith(143);

  drain.resolve();
  expect(await serving).toBe(0);
  expect(stop).toHaveBeenCalledTimes(1);
  expect(process.listenerCount('SIGTERM')).toBe(before);
});

test('SIGINT then SIGINT forces with 130', async () => {
  const drain = deferred();
  const exit = jest.fn();
  const serving = new StopSignals({ exit }).serve(() => drain.promise);
  process.emit('SIGINT');
  await tick();
  process.emit('SIGINT');
  expect(exit).toHaveBeenCalledWith(130);
  drain.resolve();
  await serving;
});

test('a service that stops on its own is drained too; one that fails rejects without a drain', async () => {
  const stop = jest.fn(async () => undefined);
  expect(await new StopSignals().serve(stop, Promise.resolve())).toBe(0);
  expect(stop).toHaveBeenCalledTimes(1);

  const stop2 = jest.fn(async () => undefined);
  await expect(new StopSignals().serve(stop2, Promise.reject(new Error('fatal')))).rejects.toThrow('fatal');
  expect(stop2).not.toHaveBeenCalled();
});

test('a signal that comes while the service is still starting is a stop request, drained once it serves', async () => {
  const before = process.listenerCount('SIGTERM');
  const exit = jest.fn();
  const signals = new StopSignals({ exit });
  expect(process.listenerCount('SIGTERM')).toBe(before + 1);
  process.emit('SIGTERM');
  expect(signals.requested).toBe('SIGTERM');
  expect(exit).not.toHaveBeenCalled();

  const stop = jest.fn(async () => undefined);
  expect(await signals.serve(stop)).toBe(0);
  expect(stop).toHaveBeenCalledTimes(1);
  expect(process.listenerCount('SIGTERM')).toBe(before);
});

test('a second signal while still starting forces, as during a drain', () => {
  const exit = jest.fn();
  const signals = new StopSignals({ exit });
  process.emit('SIGINT');
  process.emit('SIGTERM');
  expect(exit).toHaveBeenCalledWith(143);
  signals.release();
});
