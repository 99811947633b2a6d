import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSecretName, MIN_SECRET_LENGTH, SecretMasker, secretsFromEnv } from '../../../model/secret-mask';
import { jobSecretMasker, runJobScript } from '../../../runner/execute';
import { LineSplitter } from '../../../runner/log/lines';
import { LogBuffer } from '../../../runner/log/buffer';
import { jobContext } from '../../support/job-context';

const s = (name: string, value: string) => ({ name, value });

/** Lines through a per-stream masker, as the runner does it. */
function maskLines(masker: SecretMasker, lines: string[]): string[] {
  const out: string[] = [];
  const lm = masker.lineMasker((t) => out.push(t));
  for (const l of lines) lm.push(l);
  lm.end();
  return out;
}

describe('secret masking', () => {
  test('single-line: every occurrence, anywhere in the line', () => {
    const m = new SecretMasker([s('API_TOKEN', 'tok-123456')]);
    expect(m.maskLine('Authorization: tok-123456 and again tok-123456!')).toBe(
      'Authorization: *** and again ***!',
    );
    expect(m.maskLine('tok-12345 is not it')).toBe('tok-12345 is not it');
  });

  test('a secret that is a substring of another: the longer one is masked whole', () => {
    const m = new SecretMasker([s('SHORT_KEY', 'abcd'), s('LONG_KEY', 'xxabcdyy')]);
    expect(m.maskLine('long=xxabcdyy short=abcd')).toBe('long=*** short=***');
    // Given in the other order, and overlapping rather than nested: nothing of either shows.
    const o = new SecretMasker([s('A_KEY', 'abcdef'), s('B_KEY', 'defghi')]);
    expect(o.maskLine('[abcdefghi]')).toBe('[***]');
    expect(o.maskLine('[abcdef defghi]')).toBe('[*** ***]');
  });

  test('a secret equal to a common word is masked wherever the word appears', () => {
    const m = new SecretMasker([s('DB_PASSWORD', 'password')]);
    expect(m.maskLine('enter password: password')).toBe('enter ***: ***');
  });

  test(`values shorter than ${MIN_SECRET_LENGTH} characters are not masked, and are named`, () => {
    const m = new SecretMasker([s('PIN_KEY', '123'), s('EMPTY_TOKEN', ''), s('OK_TOKEN', 'abcd')]);
    expect(m.tooShort).toEqual(['PIN_KEY']);
    expect(m.maskLine('123 abcd')).toBe('123 ***');
  });

  test('multi-line: each line of the value, and the whole value across lines (short lines too)', () => {
    const pem = '-----BEGIN KEY-----\nMIIBVQIBADANBg\nkqhkiG9w0\n}\n-----END KEY-----\n';
    const m = new SecretMasker([s('TLS_KEY', pem)]);
    // Printed whole: every line masked, including "}" which alone is too short to mask.
    expect(
      maskLines(m, [
        'key: -----BEGIN KEY-----',
        'MIIBVQIBADANBg',
        'kqhkiG9w0',
        '}',
        '-----END KEY----- done',
      ]),
    ).toEqual(['key: ***', '***', '***', '***', '*** done']);
    // One line of it on its own is masked too; an unrelated "}" is not.
    expect(maskLines(m, ['x MIIBVQIBADANBg y', '}'])).toEqual(['x *** y', '}']);
    // A start that does not continue as the secret: lines come out unchanged except the known line.
    expect(maskLines(m, ['-----BEGIN KEY-----', 'other'])).toEqual(['***', 'other']);
  });

  test('split across chunk boundaries: masked on assembled lines at every split point', () => {
    const secret = 'sëcret-välue-✓-42';
    const m = new SecretMasker([s('MY_SECRET', secret)]);
    const text = Buffer.from(`before ${secret} after\nnext\n`);
    for (let cut = 1; cut < text.length; cut++) {
      const out: string[] = [];
      const lm = m.lineMasker((t) => out.push(t));
      const splitter = new LineSplitter((line) => lm.push(line));
      splitter.push(text.subarray(0, cut));
      splitter.push(text.subarray(cut));
      splitter.end();
      lm.end();
      expect(out).toEqual(['before *** after', 'next']);
    }
  });

  test('secret names: *_TOKEN, *_SECRET, *_PASSWORD, *_KEY', () => {
    expect(['GITHUB_TOKEN', 'AWS_SECRET', 'DB_PASSWORD', 'SSH_KEY', 'npm_token'].every(isSecretName)).toBe(
      true,
    );
    expect(['TOKEN', 'KEYBOARD', 'PATH', 'MONKEY'].some(isSecretName)).toBe(false);
    expect(secretsFromEnv({ PATH: '/bin', A_TOKEN: 'x', B_KEY: undefined })).toEqual([s('A_TOKEN', 'x')]);
  });
});

describe('runner masks the script output before buffering it', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'solstice-mask-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('secrets printed in pieces, by separate writes, and multi-line, never reach the buffer', async () => {
    const ctx = jobContext({
      token: 'the-job-token',
      repoUrl: '/r',
      commitSha: 'abcdef1',
      workdir: dir,
      env: { DEPLOY_TOKEN: 'dep-secret-99', PLAIN: 'visible' },
      secrets: { CERT: 'line-one-x\nline-two-y', SHORT_SECRET: 'ab' },
    });
    const env = { PATH: process.env.PATH, ...ctx.env, ...ctx.secrets };
    const masker = jobSecretMasker(env, ctx);
    expect(masker.tooShort).toEqual(['SHORT_SECRET']);
    const p = path.join(dir, 'leak.sh');
    writeFileSync(
      p,
      [
        // Written in two writes with a pause between, so the pipe delivers two chunks.
        'printf "tok=dep-sec"; sleep 0.2; printf "ret-99 plain=$PLAIN\\n"',
        'printf "%s\\n" "$CERT"',
        'echo "$CERT" >&2',
        'echo "token the-job-token short $SHORT_SECRET"',
      ].join('\n'),
    );
    const buffer = new LogBuffer({ firstSeq: 1 });
    const run = runJobScript({ scriptPath: p, cwd: dir, env, buffer, log: () => undefined, secrets: masker });
    expect((await run.done).exitCode).toBe(0);
    const lines = buffer
      .takeBatch(0, { maxLines: 100, maxBytes: 1 << 20 })
      .map((l) => `${l.stream}:${l.text}`);
    expect(lines.filter((l) => l.startsWith('LOG_STREAM_STDOUT'))).toEqual([
      'LOG_STREAM_STDOUT:tok=*** plain=visible',
      'LOG_STREAM_STDOUT:***',
      'LOG_STREAM_STDOUT:***',
      'LOG_STREAM_STDOUT:token *** short ab',
    ]);
    expect(lines.filter((l) => l.startsWith('LOG_STREAM_STDERR'))).toEqual([
      'LOG_STREAM_STDERR:***',
      'LOG_STREAM_STDERR:***',
    ]);
  });
});
