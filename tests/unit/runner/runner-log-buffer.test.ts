import { LogBuffer } from '../../../runner/log/buffer';

const limits = { maxLines: 500, maxBytes: 256 * 1024 };

describe('LogBuffer', () => {
  test('numbers lines densely across streams, from firstSeq', () => {
    const b = new LogBuffer({ firstSeq: 1 });
    expect(b.append('LOG_STREAM_STDOUT', 'a')).toBe(1);
    expect(b.append('LOG_STREAM_STDERR', 'b')).toBe(2);
    expect(b.append('LOG_STREAM_SYSTEM', 'c')).toBe(3);
    expect(b.lastSeq).toBe(3);
    const resumed = new LogBuffer({ firstSeq: 42 });
    expect(resumed.lastSeq).toBe(41);
    expect(resumed.ackedThrough).toBe(41);
    expect(resumed.append('LOG_STREAM_STDOUT', 'x')).toBe(42);
  });

  test('batches by line count and by bytes, at least one line per batch', () => {
    const b = new LogBuffer({ firstSeq: 1 });
    for (let i = 0; i < 1200; i++) b.append('LOG_STREAM_STDOUT', `line ${i}`);
    expect(b.takeBatch(0, limits)).toHaveLength(500);
    expect(b.takeBatch(1000, limits).map((l) => l.seq)).toEqual(
      Array.from({ length: 200 }, (_, i) => 1001 + i),
    );
    expect(b.takeBatch(1200, limits)).toEqual([]);

    const big = new LogBuffer({ firstSeq: 1 });
    big.append('LOG_STREAM_STDOUT', 'x'.repeat(300 * 1024)); // one oversized line still goes alone
    big.append('LOG_STREAM_STDOUT', 'small');
    expect(big.takeBatch(0, limits).map((l) => l.seq)).toEqual([1]);
    expect(big.takeBatch(1, limits).map((l) => l.seq)).toEqual([2]);
  });

  test('reports what is pending after a seq', () => {
    const b = new LogBuffer({ firstSeq: 1 });
    expect(b.pendingAfter(0)).toEqual({ lines: 0, bytes: 0 });
    b.append('LOG_STREAM_STDOUT', 'abc');
    b.append('LOG_STREAM_STDOUT', 'defg');
    const p = b.pendingAfter(0);
    expect(p.lines).toBe(2);
    expect(p.bytes).toBeGreaterThanOrEqual(7);
    expect(b.pendingAfter(1).lines).toBe(1);
    expect(b.pendingAfter(1).bytes).toBeLessThan(p.bytes);
  });

  test('acks drop lines, only move forward, and are clamped to what exists', () => {
    const b = new LogBuffer({ firstSeq: 1 });
    for (let i = 0; i < 10; i++) b.append('LOG_STREAM_STDOUT', `l${i}`);
    b.ack(4);
    expect(b.ackedThrough).toBe(4);
    expect(b.takeBatch(4, limits)[0]).toMatchObject({ seq: 5, text: 'l4' });
    b.ack(2); // stale ack
    expect(b.ackedThrough).toBe(4);
    expect(b.ack(99)).toEqual({ clamped: true });
    expect(b.ackedThrough).toBe(10);
    expect(b.unackedBytes).toBe(0);
  });

  test('resending after acks returns exactly the unacknowledged lines', () => {
    const b = new LogBuffer({ firstSeq: 1 });
    for (let i = 0; i < 3000; i++) b.append('LOG_STREAM_STDOUT', `l${i}`);
    b.ack(2500); // triggers compaction of the acknowledged prefix
    const batch = b.takeBatch(b.ackedThrough, { maxLines: 10_000, maxBytes: 10 ** 9 });
    expect(batch.map((l) => l.seq)).toEqual(Array.from({ length: 500 }, (_, i) => 2501 + i));
    expect(batch[0].text).toBe('l2500');
  });

  test('isDone only when closed and everything acknowledged', () => {
    const b = new LogBuffer({ firstSeq: 1 });
    b.append('LOG_STREAM_STDOUT', 'a');
    expect(b.isDone).toBe(false);
    b.close();
    expect(b.isDone).toBe(false);
    b.ack(1);
    expect(b.isDone).toBe(true);
    expect(() => b.append('LOG_STREAM_STDOUT', 'late')).toThrow(/after close/);
    const empty = new LogBuffer({ firstSeq: 7 });
    empty.close();
    expect(empty.isDone).toBe(true);
  });

  test('back-pressure: pauses above the high-water mark, resumes at the low-water mark', () => {
    const events: boolean[] = [];
    const b = new LogBuffer({ firstSeq: 1, highWaterBytes: 1000, lowWaterBytes: 500 });
    b.setPressureHandler((p) => events.push(p));
    for (let i = 0; i < 20; i++) b.append('LOG_STREAM_STDOUT', 'x'.repeat(76)); // 100 bytes each
    expect(events).toEqual([true]);
    expect(b.isPaused).toBe(true);
    b.ack(5); // 1500 left
    expect(events).toEqual([true]);
    b.ack(15); // 500 left
    expect(events).toEqual([true, false]);
    expect(b.isPaused).toBe(false);
  });

  test('a pressure handler set while paused is told at once', () => {
    const b = new LogBuffer({ firstSeq: 1, highWaterBytes: 10 });
    b.append('LOG_STREAM_STDOUT', 'more than ten bytes');
    const events: boolean[] = [];
    b.setPressureHandler((p) => events.push(p));
    expect(events).toEqual([true]);
  });

  test('wakes waiters on append, ack and close', async () => {
    const b = new LogBuffer({ firstSeq: 1 });
    const woke = b.changed.wait();
    b.append('LOG_STREAM_STDOUT', 'a');
    await expect(woke).resolves.toBe(true);
    await expect(b.changed.wait(5)).resolves.toBe(false);
    const woke2 = b.changed.wait(1000);
    b.close();
    await expect(woke2).resolves.toBe(true);
  });
});
