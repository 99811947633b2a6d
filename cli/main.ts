#!/usr/bin/env node
/** `solstice`: the command-line interface. Errors print as one line plus a hint; --verbose adds stacks. */
import fs from 'node:fs';
import path from 'node:path';
import { Builtins, Cli } from 'clipanion';
import { readSetting } from '../platform/config';
import { ArtifactsGetCommand, ArtifactsListCommand } from './commands/artifacts';
import { CiLocalCommand } from './commands/ci-local';
import { DbMigrateCommand } from './commands/db';
import { DoctorCommand } from './commands/doctor';
import { EnqueueCommand } from './commands/enqueue';
import { BridgeCommand, WebhookServeCommand } from './commands/ingress';
import { JobsCommand, StatusCommand } from './commands/jobs';
import { LogsCommand } from './commands/logs';
import { CancelCommand, PipelinesCommand, RerunCommand } from './commands/pipelines';
import {
  JobPageCommand,
  LogServiceCommand,
  RunnerServeCommand,
  UpCommand,
  WorkerCommand,
} from './commands/services';
import { WorkflowShowCommand, WorkflowValidateCommand } from './commands/workflow';
import { printError } from './output';

/** package.json from dist/cli (built) or cli/ (sources, as tests load it). */
function packageVersion(): string {
  const file = ['../package.json', '../../package.json']
    .map((p) => path.resolve(__dirname, p))
    .find((p) => fs.existsSync(p));
  return file ? (JSON.parse(fs.readFileSync(file, 'utf8')) as { version: string }).version : 'unknown';
}

export function buildCli(): Cli {
  const cli = new Cli({
    binaryLabel: 'Solstice CI',
    binaryName: 'solstice',
    binaryVersion: packageVersion(),
    enableColors: Boolean(process.stdout.isTTY) && !readSetting('noColor'),
  });
  for (const c of [
    UpCommand,
    CiLocalCommand,
    EnqueueCommand,
    LogsCommand,
    ArtifactsListCommand,
    ArtifactsGetCommand,
    StatusCommand,
    JobsCommand,
    PipelinesCommand,
    CancelCommand,
    RerunCommand,
    DbMigrateCommand,
    DoctorCommand,
    WorkerCommand,
    LogServiceCommand,
    JobPageCommand,
    RunnerServeCommand,
    BridgeCommand,
    WebhookServeCommand,
    WorkflowValidateCommand,
    WorkflowShowCommand,
    Builtins.HelpCommand,
    Builtins.VersionCommand,
  ]) {
    cli.register(c);
  }
  return cli;
}

export async function main(argv: string[]): Promise<number> {
  const cli = buildCli();
  let verbose = argv.includes('--verbose');
  try {
    // In the try: a malformed SOLSTICE_DEBUG is reported like any other bad setting.
    verbose ||= readSetting('debug');
    const command = cli.process(argv);
    // Run directly rather than through cli.run so our error printing replaces clipanion's stack dump.
    command.context = {
      ...Cli.defaultContext,
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      colorDepth: 1,
    };
    command.cli = cli;
    return (await command.validateAndExecute()) as number;
  } catch (err) {
    if (
      err instanceof Error &&
      (err.name === 'UsageError' ||
        err.constructor.name === 'UnknownSyntaxError' ||
        err.constructor.name === 'AmbiguousSyntaxError')
    ) {
      process.stderr.write(cli.error(err, { colored: Boolean(process.stderr.isTTY) }));
      return 2;
    }
    return printError(err, verbose);
  }
}

/**
 * Exits once stdout and stderr have written everything: on a pipe, writes are asynchronous and
 * process.exit() would drop what is still queued (`solstice logs <job> | wc -c` got part of the
 * log). A write's callback runs after every write queued before it.
 */
function exitAfterDrain(code: number): void {
  let pending = 2;
  const done = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write('', done);
  process.stderr.write('', done);
}

/**
 * A reader that stopped reading (`solstice logs <job> | head -2`) closes the pipe: the CLI stops
 * quietly, as a Unix tool killed by SIGPIPE would, instead of printing an EPIPE stack.
 */
function stopOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

export function run(): void {
  stopOnClosedPipe(process.stdout);
  stopOnClosedPipe(process.stderr);
  main(process.argv.slice(2)).then(exitAfterDrain, (err: unknown) => exitAfterDrain(printError(err, true)));
}

if (require.main === module) run();
