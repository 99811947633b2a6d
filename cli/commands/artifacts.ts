import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Command, Option } from 'clipanion';
import { formatSize } from '../../platform/config';
import { InputError, NotFoundError } from '../../platform/errors';
import { BlobCommand } from '../settings-options';

export class ArtifactsListCommand extends BlobCommand {
  static override paths = [['artifacts', 'list']];
  static override usage = Command.Usage({
    description: "List a job's artifacts: path, size and SHA-256",
    details:
      'Give a job id (in full or a unique prefix of at least 4 characters) or <pipeline>/<job name>, the pipeline by id or as <repo>#<number> (app#12/lint).',
    examples: [
      ['The artifacts of a job', 'solstice artifacts list 3f2a9c'],
      ['As JSON lines', 'solstice artifacts list 3f2a9c --json'],
    ],
  });

  job = Option.String({ name: 'job' });
  json = Option.Boolean('--json', false, { description: 'Print JSON lines instead of a table' });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [{ withStore }, { ArtifactStore }, { resolveJobReference }, { remoteMode }] = await Promise.all([
      import('../context'),
      import('../../storage/artifact-store'),
      import('../pipelines'),
      import('../remote-mode'),
    ]);
    const listed = remoteMode(cfg)
      ? (async () => {
          const remote = (await import('../remote')).remoteSession(cfg);
          const job = await remote.resolveJob(this.job);
          return { job, artifacts: await remote.api.listArtifacts(job.id) };
        })()
      : withStore(cfg, async (store) => {
          const job = await resolveJobReference(store, this.job);
          return { job, artifacts: await new ArtifactStore(store.db).list(job.id) };
        });
    {
      const { job, artifacts } = await listed;
      const width = Math.max(4, ...artifacts.map((a) => a.path.length));
      for (const a of artifacts) {
        this.context.stdout.write(
          this.json
            ? `${JSON.stringify(a)}\n`
            : `${a.path.padEnd(width)}  ${formatSize(a.size).padStart(10)}  ${a.sha256}\n`,
        );
      }
      if (artifacts.length === 0 && !this.json)
        this.context.stdout.write(
          `job ${job.id} has no artifacts (a job declares them with \`artifacts\`)\n`,
        );
      return 0;
    }
  }
}

export class ArtifactsGetCommand extends BlobCommand {
  static override paths = [['artifacts', 'get']];
  static override usage = Command.Usage({
    description: 'Download one artifact of a job',
    details: 'Writes the file to stdout, or to the file given with -o.',
    examples: [['Save a build', 'solstice artifacts get 3f2a9c dist/app.tar.gz -o app.tar.gz']],
  });

  job = Option.String({ name: 'job' });
  artifactPath = Option.String({ name: 'path' });
  output = Option.String('-o,--output', { description: 'File to write (default: stdout)' });

  async execute(): Promise<number> {
    const cfg = this.config();
    const [
      { withStore },
      { ArtifactStore, artifactBlobKey },
      { createBlobStore },
      { resolveJobReference },
      { remoteMode },
    ] = await Promise.all([
      import('../context'),
      import('../../storage/artifact-store'),
      import('../../storage/create-blob-store'),
      import('../pipelines'),
      import('../remote-mode'),
    ]);
    if (remoteMode(cfg)) {
      const remote = (await import('../remote')).remoteSession(cfg);
      const job = await remote.resolveJob(this.job);
      const path = this.artifactPath.split('/').map(encodeURIComponent).join('/');
      const body = await remote.api.download(`/v1/jobs/${job.id}/artifacts/${path}`);
      if (this.output && this.output !== '-') {
        await assertWritableFolder(this.output);
        await pipeline(body, await openOutput(this.output));
      } else await pipeline(body, this.context.stdout, { end: false });
      return 0;
    }
    return withStore(cfg, async (store) => {
      const blobs = createBlobStore(cfg);
      try {
        const job = await resolveJobReference(store, this.job);
        const artifact = await new ArtifactStore(store.db).get(job.id, this.artifactPath);
        if (artifact && this.output && this.output !== '-') await assertWritableFolder(this.output);
        const body = artifact ? await blobs.getStream(artifactBlobKey(job.id, artifact.path)) : undefined;
        if (!body) {
          throw new NotFoundError(
            `job ${job.id} has no artifact ${this.artifactPath}${artifact ? ' in the blob store' : ''}`,
            artifact
              ? `the blob store (${blobs.describe()}) lacks it: is BLOB_FS_ROOT or S3_BUCKET the one the log service uses?`
              : `\`solstice artifacts list ${job.id}\` shows what it has`,
          );
        }
        if (this.output && this.output !== '-') await pipeline(body, await openOutput(this.output));
        else await pipeline(body, this.context.stdout, { end: false });
        return 0;
      } finally {
        await blobs.close();
      }
    });
  }
}

/** The -o file's folder must exist and be writable, checked before the blob store is asked. */
async function assertWritableFolder(file: string): Promise<void> {
  const dir = path.dirname(path.resolve(file));
  try {
    await fs.promises.access(dir, fs.constants.W_OK);
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    throw new InputError(
      `cannot write ${file}: ${missing ? `folder ${dir} does not exist` : `folder ${dir} is not writable`}`,
      missing ? `create it first (mkdir -p ${dir}) or give another -o path` : 'give another -o path',
    );
  }
}

/** The -o file; a path that cannot be written is bad input. */
async function openOutput(file: string): Promise<fs.WriteStream> {
  try {
    return (await fs.promises.open(file, 'w')).createWriteStream();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const dir = path.dirname(path.resolve(file));
    throw new InputError(
      `cannot write ${file}: ${code === 'ENOENT' ? `folder ${dir} does not exist` : (err as Error).message}`,
      code === 'ENOENT' ? `create it first (mkdir -p ${dir}) or give another -o path` : undefined,
    );
  }
}
