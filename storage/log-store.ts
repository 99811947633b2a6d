/**
 * A job's log, in one place: how it is stored while the job runs, how it moves to the blob
 * store when the job ends, how it is read back at any line, and how retention removes it.
 *
 * While the job runs its lines are chunks in PostgreSQL (`log_chunks`): up to CHUNK_MAX_LINES
 * lines or about CHUNK_MAX_BYTES of text a row, with the first and last sequence number and
 * each line's byte offset, so a window of lines is one index range scan. A row per line (the
 * earlier `log_lines`) cost a tuple header, an index entry and a WAL record per line; a chunk
 * costs them once per few hundred lines.
 *
 * When the job ends `archive` writes the log to the blob store as gzip made of independent
 * members (one per MEMBER_MAX_LINES lines or MEMBER_MAX_BYTES of text) plus a small line
 * index naming each member's first line and byte range, and deletes the chunks in the
 * transaction that marks the job archived. `gunzip`/`zcat` read the file as one text (gzip
 * allows concatenated members); a reader of lines N.. fetches only the members that hold them.
 */
import { promisify } from 'node:util';
import { createGunzip, gunzip as gunzipCb, gzip as gzipCb } from 'node:zlib';
import { Readable } from 'node:stream';
import pg from 'pg';
import { pgPool, type Db } from './db';
import type { BlobStore } from './blob-store';
import { NotFoundError, SolsticeError } from '../platform/errors';
import { notifyWaiters, PgWakeups, WAKE_CHANNEL } from './pg-wakeups';

const gzip = promisify(gzipCb);
const gunzip = promisify(gunzipCb);

export interface LogLineRecord {
  seq: number;
  stream: string;
  text: string;
  time: Date;
}

export const CHUNK_MAX_LINES = 500;
export const CHUNK_MAX_BYTES = 64 * 1024;
const MEMBER_MAX_LINES = 1000;
const MEMBER_MAX_BYTES = 256 * 1024;

/** One letter a line in `log_chunks.streams` and the index; the migration uses the same letters. */
const STREAM_CODES: Record<string, string> = { stdout: 'o', stderr: 'e', system: 's', console: 'c' };
const CODE_STREAMS: Record<string, string> = Object.fromEntries(
  Object.entries(STREAM_CODES).map(([name, code]) => [code, name]),
);

/** The one place that names where a finished job's log and its line index are stored. */
export function logBlobKey(jobId: string): string {
  return `jobs/${jobId}/log.txt.gz`;
}
export function logIndexKey(jobId: string): string {
  return `jobs/${jobId}/log.idx.json`;
}
export const LOG_BLOB_CONTENT_TYPE = 'application/gzip';

/** Retention removed this log; `expiredAt` says when. */
export class LogExpiredError extends NotFoundError {
  constructor(
    readonly jobId: string,
    readonly expiredAt: Date,
  ) {
    super(
      `the log of job ${jobId} expired on ${expiredAt.toISOString()}`,
      'Logs are kept as long as SOLSTICE_RETAIN_LOGS says.',
    );
  }
}

/** Lines that do not continue the stored log (a caller's bug: ingest only sends the next run). */
export class LogGapError extends SolsticeError {}

/** Where a job's log is. */
export type LogPlace =
  | { kind: 'chunks'; lastSeq: number }
  | { kind: 'archived'; lastSeq: number; archivedAt: Date }
  | { kind: 'expired'; expiredAt: Date };

/**
 * The line index of an archived log. `members[i]` is [first seq, byte offset, byte length,
 * epoch ms of its first line, streams as runs `<count><letter>`].
 */
interface LogIndex {
  v: 1;
  lines: number;
  members: [number, number, number, number, string][];
}

interface ChunkRow {
  first_seq: number;
  last_seq: number;
  data: Buffer;
  offsets: number[];
  streams: string;
  times: number[];
}

/**
 * The chunk columns as read back. The two arrays come as comma-separated text and are split
 * here: node-postgres parses an array literal character by character in JavaScript, which was a
 * fifth of a follower's CPU (two numbers a line), where `split` is native.
 */
const CHUNK_COLUMNS = `first_seq, last_seq, data, array_to_string(offsets, ',') AS offsets, streams,
  array_to_string(times, ',') AS times`;

type ChunkColumns = Omit<ChunkRow, 'offsets' | 'times'> & { offsets: string; times: string };

const numbers = (csv: string): number[] => (csv === '' ? [] : csv.split(',').map(Number));

function chunkRow(row: ChunkColumns): ChunkRow {
  return { ...row, offsets: numbers(row.offsets), times: numbers(row.times) };
}

function linesOfChunk(row: ChunkRow, after: number): LogLineRecord[] {
  const out: LogLineRecord[] = [];
  for (let i = Math.max(0, after + 1 - row.first_seq); i < row.offsets.length; i += 1) {
    const end = (i + 1 < row.offsets.length ? row.offsets[i + 1] : row.data.length) - 1;
    out.push({
      seq: row.first_seq + i,
      stream: CODE_STREAMS[row.streams[i]] ?? 'stdout',
      text: row.data.toString('utf8', row.offsets[i], end),
      time: new Date(row.times[i]),
    });
  }
  return out;
}

/**
 * A run of lines as chunk columns; offsets start at `base` (the bytes already in the chunk).
 * `bytes[i]` is the UTF-8 length of `lines[i].text` when the caller measured it already. The
 * text goes into one buffer sized up front: no Buffer a line on the ingest path.
 */
function encodeLines(lines: LogLineRecord[], base = 0, bytes?: number[]) {
  const lengths = bytes ?? lines.map((l) => Buffer.byteLength(l.text, 'utf8'));
  let total = 0;
  for (const n of lengths) total += n + 1;
  const data = Buffer.allocUnsafe(total);
  const offsets = new Array<number>(lines.length);
  const times = new Array<number>(lines.length);
  let streams = '';
  let at = 0;
  for (let i = 0; i < lines.length; i += 1) {
    const l = lines[i];
    offsets[i] = base + at;
    at += data.write(l.text, at, 'utf8');
    data[at] = 0x0a;
    at += 1;
    streams += STREAM_CODES[l.stream] ?? 'o';
    times[i] = l.time.getTime();
  }
  return { data, offsets, streams, times };
}

function runsOf(codes: string): string {
  let out = '';
  for (let i = 0; i < codes.length;) {
    let j = i;
    while (j < codes.length && codes[j] === codes[i]) j += 1;
    out += `${j - i}${codes[i]}`;
    i = j;
  }
  return out;
}

function expandRuns(runs: string): string {
  let out = '';
  for (const m of runs.matchAll(/(\d+)([a-z])/g)) out += m[2].repeat(Number(m[1]));
  return out;
}

const INDEX_CACHE_SIZE = 32;

export class LogStore {
  /** Archived logs never change: their indexes are kept for the next window of the same log. */
  private readonly indexes = new Map<string, LogIndex>();
  /** Jobs with lines stored that followers were not yet told of, and whether a notify is on its way. */
  private readonly unnotified = new Set<string>();
  private notifying = false;
  /** Followers in this process wait on these (see pg-wakeups.ts). */
  readonly wakeups = new PgWakeups(() => new pg.Client(this.pool.options), WAKE_CHANNEL.log);

  constructor(
    readonly db: Db,
    private readonly blobs?: BlobStore,
  ) {}

  private get pool(): pg.Pool {
    return pgPool(this.db);
  }

  async place(jobId: string): Promise<LogPlace> {
    const { rows } = await this.pool.query<{
      log_archived_at: Date | null;
      log_expired_at: Date | null;
      log_line_count: number | null;
      last: number | null;
    }>(
      `SELECT j.log_archived_at, j.log_expired_at, j.log_line_count,
              (SELECT max(last_seq) FROM log_chunks WHERE job_id = $1::uuid) AS last
       FROM jobs j WHERE j.id = $1::uuid`,
      [jobId],
    );
    const r = rows[0];
    if (r?.log_expired_at) return { kind: 'expired', expiredAt: r.log_expired_at };
    if (r?.log_archived_at)
      return { kind: 'archived', lastSeq: r.log_line_count ?? 0, archivedAt: r.log_archived_at };
    return { kind: 'chunks', lastSeq: r?.last ?? 0 };
  }

  /** The last stored sequence number (lines are dense from 1, so also how many there are); 0 for an expired log. */
  async lastSeq(jobId: string): Promise<number> {
    const p = await this.place(jobId);
    return p.kind === 'expired' ? 0 : p.lastSeq;
  }

  /**
   * Stores lines that continue the log; lines already stored (same seq) are left as they are.
   * Returns how many were new. Lines for a log that was archived or expired are not stored.
   *
   * Under a per-job advisory lock, so two streams of one job (a reconnect racing the old
   * stream) cannot both extend it. The last chunk is topped up while it is small (a job that
   * prints a line at a time still gets few-hundred-line chunks), then new chunks follow in one
   * statement. Straight on the pool, past Prisma (see pgPool for why).
   */
  async append(jobId: string, lines: LogLineRecord[]): Promise<number> {
    if (lines.length === 0) return 0;
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('solstice-log:' || $1, 0))`, [jobId]);
      const { rows } = await client.query<{
        closed: boolean;
        first_seq: number | null;
        last_seq: number | null;
        n: number | null;
        bytes: number | null;
      }>(
        `SELECT (j.log_archived_at IS NOT NULL OR j.log_expired_at IS NOT NULL) AS closed,
                c.first_seq, c.last_seq, c.last_seq - c.first_seq + 1 AS n, octet_length(c.data) AS bytes
         FROM jobs j LEFT JOIN LATERAL (
           SELECT first_seq, last_seq, data FROM log_chunks WHERE job_id = j.id ORDER BY last_seq DESC LIMIT 1
         ) c ON true
         WHERE j.id = $1::uuid`,
        [jobId],
      );
      const head = rows[0];
      if (!head) throw new NotFoundError(`no job ${jobId} to store log lines for`);
      const stored = head.last_seq ?? 0;
      const fresh = [...lines].sort((a, b) => a.seq - b.seq).filter((l) => l.seq > stored);
      if (head.closed || fresh.length === 0) {
        await client.query('COMMIT');
        return 0;
      }
      fresh.forEach((l, i) => {
        if (l.seq !== stored + 1 + i)
          throw new LogGapError(`log line ${l.seq} of job ${jobId} does not follow line ${stored + i}`);
      });

      // Each line's UTF-8 length, measured once for cutting chunks and for encoding them.
      const lengths = fresh.map((l) => Buffer.byteLength(l.text, 'utf8'));
      let pos = 0;
      if (head.first_seq !== null && (head.n ?? 0) < CHUNK_MAX_LINES && (head.bytes ?? 0) < CHUNK_MAX_BYTES) {
        const take = takeChunk(
          lengths,
          pos,
          CHUNK_MAX_LINES - (head.n ?? 0),
          CHUNK_MAX_BYTES - (head.bytes ?? 0),
        );
        const enc = encodeLines(fresh.slice(0, take), head.bytes ?? 0, lengths.slice(0, take));
        await client.query(
          `UPDATE log_chunks SET last_seq = $3, data = data || $4::bytea, offsets = offsets || $5::int[],
             streams = streams || $6, times = times || $7::bigint[]
           WHERE job_id = $1::uuid AND first_seq = $2`,
          [
            jobId,
            head.first_seq,
            fresh[take - 1].seq,
            enc.data,
            pgArray(enc.offsets),
            enc.streams,
            pgArray(enc.times),
          ],
        );
        pos = take;
      }
      if (pos < fresh.length) {
        const values: string[] = [];
        const params: unknown[] = [jobId];
        while (pos < fresh.length) {
          const take = takeChunk(lengths, pos, CHUNK_MAX_LINES, CHUNK_MAX_BYTES);
          const enc = encodeLines(fresh.slice(pos, pos + take), 0, lengths.slice(pos, pos + take));
          const p = params.length;
          values.push(
            `($1::uuid, $${p + 1}::int, $${p + 2}::int, $${p + 3}::bytea, $${p + 4}::int[], $${p + 5}, $${p + 6}::bigint[])`,
          );
          params.push(
            fresh[pos].seq,
            fresh[pos + take - 1].seq,
            enc.data,
            pgArray(enc.offsets),
            enc.streams,
            pgArray(enc.times),
          );
          pos += take;
        }
        await client.query(
          `INSERT INTO log_chunks (job_id, first_seq, last_seq, data, offsets, streams, times) VALUES ${values.join(', ')}`,
          params,
        );
      }
      await client.query('COMMIT');
      this.notifyStored(jobId);
      return fresh.length;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  }

  /**
   * Tells followers (pg-wakeups.ts) that lines of the job are stored, after the append committed.
   * Not inside the append: PostgreSQL holds one lock for every notifying transaction until its
   * commit is flushed, so appends that notified waited on each other's fsync while holding their
   * pool connections, and a burst of jobs emptied the pool (two-installations-broker). Here one
   * statement at a time per process notifies for every job stored since the last one, so the
   * wake-ups take at most one connection. Not awaited: a lost wake-up costs a follower one poll
   * interval, never lines.
   */
  private notifyStored(jobId: string): void {
    this.unnotified.add(jobId);
    if (this.notifying) return;
    this.notifying = true;
    void (async () => {
      while (this.unnotified.size > 0) {
        const jobIds = [...this.unnotified];
        this.unnotified.clear();
        await notifyWaiters(this.pool, WAKE_CHANNEL.log, jobIds).catch(() => undefined);
      }
      this.notifying = false;
    })();
  }

  /**
   * Up to `limit` lines after `afterSeq`, from the chunks while the job runs and from the blob
   * store once it was archived. Throws LogExpiredError when retention removed the log.
   */
  async linesAfter(jobId: string, afterSeq: number, limit: number): Promise<LogLineRecord[]> {
    if (limit <= 0) return [];
    const fromChunks = await this.chunkLinesAfter(jobId, afterSeq, limit);
    if (fromChunks.length > 0) return fromChunks;
    // No chunk after it: the log may have moved to the blob store. The move deletes the chunks
    // in the transaction that marks the job, so looking now sees the mark.
    const place = await this.place(jobId);
    if (place.kind === 'expired') throw new LogExpiredError(jobId, place.expiredAt);
    if (place.kind === 'chunks' || afterSeq >= place.lastSeq) return [];
    return this.archivedLinesAfter(jobId, afterSeq, limit);
  }

  /** Up to `count` chunks holding lines after `afterSeq`, in line order. */
  private async chunksAfter(jobId: string, afterSeq: number, count: number): Promise<ChunkRow[]> {
    // Chunks never overlap, so ordered by last_seq they are in line order, on their own index.
    const { rows } = await this.pool.query<ChunkColumns>(
      `SELECT ${CHUNK_COLUMNS} FROM log_chunks
       WHERE job_id = $1::uuid AND last_seq > $2 ORDER BY last_seq LIMIT $3`,
      [jobId, afterSeq, count],
    );
    return rows.map(chunkRow);
  }

  private async chunkLinesAfter(jobId: string, afterSeq: number, limit: number): Promise<LogLineRecord[]> {
    const out: LogLineRecord[] = [];
    let after = afterSeq;
    while (out.length < limit) {
      // Enough chunks for the lines still wanted if they are full, one more for a partial
      // one; the loop fetches more if they were short. (Assuming 100 lines a chunk fetched
      // about three times the lines wanted, decoded and thrown away, on every page.)
      const rows = await this.chunksAfter(
        jobId,
        after,
        Math.ceil((limit - out.length) / CHUNK_MAX_LINES) + 1,
      );
      for (const row of rows) out.push(...linesOfChunk(row, after));
      if (rows.length === 0) break;
      after = rows[rows.length - 1].last_seq;
    }
    return out.slice(0, limit);
  }

  private blobStore(): BlobStore {
    if (!this.blobs) throw new Error('LogStore: reading an archived log needs the blob store');
    return this.blobs;
  }

  private async index(jobId: string): Promise<LogIndex> {
    const cached = this.indexes.get(jobId);
    if (cached) return cached;
    const raw = await this.blobStore().get(logIndexKey(jobId));
    if (!raw)
      throw new NotFoundError(
        `the log index of job ${jobId} is missing from ${this.blobStore().describe()}`,
        'The blob store lost jobs/<id>/log.idx.json; the gzip log beside it may still be there.',
      );
    const idx = JSON.parse(raw.toString('utf8')) as LogIndex;
    if (this.indexes.size >= INDEX_CACHE_SIZE)
      this.indexes.delete(this.indexes.keys().next().value as string);
    this.indexes.set(jobId, idx);
    return idx;
  }

  private async archivedLinesAfter(jobId: string, afterSeq: number, limit: number): Promise<LogLineRecord[]> {
    const idx = await this.index(jobId);
    const members = idx.members;
    // The last member starting at or before the first wanted line.
    let lo = 0;
    let hi = members.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (members[mid][0] <= afterSeq + 1) lo = mid;
      else hi = mid - 1;
    }
    let last = lo;
    while (last + 1 < members.length && members[last + 1][0] <= afterSeq + limit) last += 1;
    const start = members[lo][1];
    const end = members[last][1] + members[last][2];
    const bytes = await this.blobStore().getRange(logBlobKey(jobId), start, end);
    if (!bytes)
      throw new NotFoundError(`the log of job ${jobId} is missing from ${this.blobStore().describe()}`);
    const text = (await gunzip(bytes)).toString('utf8').split('\n');
    const out: LogLineRecord[] = [];
    let t = 0;
    for (let m = lo; m <= last; m += 1) {
      const [first, , , timeMs, runs] = members[m];
      const streams = expandRuns(runs);
      for (let i = 0; i < streams.length; i += 1, t += 1) {
        const seq = first + i;
        if (seq <= afterSeq || out.length >= limit) continue;
        out.push({
          seq,
          stream: CODE_STREAMS[streams[i]] ?? 'stdout',
          text: text[t],
          time: new Date(timeMs),
        });
      }
    }
    return out;
  }

  /** The whole log as text (`log.txt`), streamed: the gzip as it is once archived, else chunk by chunk. */
  async textStream(jobId: string): Promise<Readable> {
    const place = await this.place(jobId);
    if (place.kind === 'expired') throw new LogExpiredError(jobId, place.expiredAt);
    if (place.kind === 'archived') {
      const body = await this.blobStore().getStream(logBlobKey(jobId));
      if (!body)
        throw new NotFoundError(`the log of job ${jobId} is missing from ${this.blobStore().describe()}`);
      return body.pipe(createGunzip());
    }
    const pool = this.pool;
    async function* text(): AsyncGenerator<Buffer> {
      let after = 0;
      for (;;) {
        const { rows } = await pool.query<{ data: Buffer; last_seq: number }>(
          `SELECT data, last_seq FROM log_chunks WHERE job_id = $1::uuid AND last_seq > $2 ORDER BY last_seq LIMIT 64`,
          [jobId, after],
        );
        if (rows.length === 0) return;
        yield Buffer.concat(rows.map((r) => r.data));
        after = rows[rows.length - 1].last_seq;
      }
    }
    return Readable.from(text());
  }

  /**
   * Moves a finished job's log to the blob store (gzip + line index) and deletes its chunks.
   * Repeatable: an archived log is left as it is; lines stored while it was being written
   * (a late batch) make it write again, so nothing is lost.
   */
  async archive(jobId: string): Promise<string> {
    const blobs = this.blobStore();
    const key = logBlobKey(jobId);
    for (;;) {
      const place = await this.place(jobId);
      if (place.kind !== 'chunks') return key;
      const idx: LogIndex = { v: 1, lines: 0, members: [] };
      // 32 chunks (about 2 MiB) a read: the archive holds that much of the log at a time, not all of it.
      const chunksAfter = (after: number): Promise<ChunkRow[]> => this.chunksAfter(jobId, after, 32);
      async function* members(): AsyncGenerator<Buffer> {
        let after = 0;
        let offset = 0;
        // A member is cut from the chunks' bytes as they are: no string or object a line.
        let pending = { parts: [] as Buffer[], bytes: 0, lines: 0, firstSeq: 0, timeMs: 0, streams: '' };
        const flush = async (): Promise<Buffer> => {
          const z = await gzip(Buffer.concat(pending.parts, pending.bytes));
          idx.members.push([pending.firstSeq, offset, z.length, pending.timeMs, runsOf(pending.streams)]);
          offset += z.length;
          idx.lines = pending.firstSeq + pending.lines - 1;
          pending = { parts: [], bytes: 0, lines: 0, firstSeq: 0, timeMs: 0, streams: '' };
          return z;
        };
        for (;;) {
          const rows = await chunksAfter(after);
          if (rows.length === 0) break;
          for (const row of rows) {
            const n = row.offsets.length;
            let from = Math.max(0, after + 1 - row.first_seq);
            for (let i = from; i < n; i += 1) {
              const end = i + 1 < n ? row.offsets[i + 1] : row.data.length;
              if (pending.lines === 0) {
                pending.firstSeq = row.first_seq + i;
                pending.timeMs = row.times[i];
              }
              pending.lines += 1;
              pending.bytes += end - row.offsets[i];
              if (pending.lines >= MEMBER_MAX_LINES || pending.bytes >= MEMBER_MAX_BYTES || i + 1 === n) {
                pending.parts.push(row.data.subarray(row.offsets[from], end));
                pending.streams += row.streams.slice(from, i + 1);
                from = i + 1;
                if (pending.lines >= MEMBER_MAX_LINES || pending.bytes >= MEMBER_MAX_BYTES)
                  yield await flush();
              }
            }
            after = row.last_seq;
          }
        }
        if (pending.lines > 0) yield await flush();
        // A log without lines is still a valid (empty) gzip file.
        if (offset === 0) yield await gzip(Buffer.alloc(0));
      }
      await blobs.put(key, Readable.from(members()), { contentType: LOG_BLOB_CONTENT_TYPE });
      await blobs.put(logIndexKey(jobId), JSON.stringify(idx), { contentType: 'application/json' });
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('solstice-log:' || $1, 0))`, [
          jobId,
        ]);
        const { rows } = await client.query<{ last: number | null }>(
          'SELECT max(last_seq) AS last FROM log_chunks WHERE job_id = $1::uuid',
          [jobId],
        );
        if ((rows[0]?.last ?? 0) !== idx.lines) {
          await client.query('ROLLBACK');
          continue; // lines arrived while the blob was written: write it again with them
        }
        await client.query(
          'UPDATE jobs SET log_archived_at = now(), log_line_count = $2 WHERE id = $1::uuid',
          [jobId, idx.lines],
        );
        await client.query('DELETE FROM log_chunks WHERE job_id = $1::uuid', [jobId]);
        await client.query('COMMIT');
        this.indexes.delete(jobId);
        return key;
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    }
  }

  /** Retention: removes the log from the blob store and PostgreSQL and marks the job so its page can say so. */
  async expire(jobId: string): Promise<void> {
    const blobs = this.blobStore();
    await blobs.delete(logBlobKey(jobId));
    await blobs.delete(logIndexKey(jobId));
    const client = await this.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`SELECT pg_advisory_xact_lock(hashtextextended('solstice-log:' || $1, 0))`, [jobId]);
      await client.query('DELETE FROM log_chunks WHERE job_id = $1::uuid', [jobId]);
      await client.query(
        'UPDATE jobs SET log_expired_at = now() WHERE id = $1::uuid AND log_expired_at IS NULL',
        [jobId],
      );
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
    this.indexes.delete(jobId);
  }
}

/**
 * How many lines from `from` fit one chunk, by their UTF-8 lengths: at most `maxLines`, and text
 * up to about `maxBytes` (at least one line).
 */
function takeChunk(lengths: number[], from: number, maxLines: number, maxBytes: number): number {
  let bytes = 0;
  let n = 0;
  while (from + n < lengths.length && n < maxLines) {
    bytes += lengths[from + n] + 1;
    if (n > 0 && bytes > maxBytes) break;
    n += 1;
  }
  return Math.max(1, n);
}

/**
 * An integer array as PostgreSQL's array literal: node-postgres would otherwise prepare and
 * escape it element by element, a cost a line on the ingest path.
 */
function pgArray(xs: number[]): string {
  return `{${xs.join(',')}}`;
}
