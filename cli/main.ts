#!/usr/bin/env node
/** `solstice`: the command-line interface. Errors print as one line plus a hint; --verbose adds stacks. */
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
import { GcCommand } from './commands/gc';
import { CancelCommand, PipelinesCommand, RerunCommand } from './commands/pipelines';
import {
  JobPageCommand,
  LogServiceCommand,
  RunnerServeCommand,
  UpCommand,
  WorkerCommand,
} from './commands/services';
import { TemporalSetupCommand } from './commands/temporal';
import { TokenCreateCommand, TokenListCommand, TokenRevokeCommand } from './commands/token';
import { WorkflowShowCommand, WorkflowValidateCommand } from './commands/workflow';
import { printError } from './output';
import { solsticeVersion } from '../platform/version';
import { editDistance } from '../workflow-file/suggest';

export function buildCli(): Cli {
  const cli = new Cli({
    binaryLabel: 'Solstice CI',
    binaryName: 'solstice',
    binaryVersion: solsticeVersion(),
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
    TemporalSetupCommand,
    GcCommand,
    DoctorCommand,
    WorkerCommand,
    LogServiceCommand,
    JobPageCommand,
    RunnerServeCommand,
    BridgeCommand,
    WebhookServeCommand,
    WorkflowValidateCommand,
    WorkflowShowCommand,
    TokenCreateCommand,
    TokenListCommand,
    TokenRevokeCommand,
    Builtins.HelpCommand,
    Builtins.VersionCommand,
  ]) {
    cli.register(c);
  }
  return cli;
}

/** Every command's words (`['artifacts', 'get']`) and one-line description, in registration order. */
function commandList(cli: Cli): { path: string[]; description: string }[] {
  return cli
    .definitions()
    .filter((d) => d.path !== 'solstice' && !d.path.startsWith('solstice -'))
    .map((d) => ({ path: d.path.split(' ').slice(1), description: (d.description ?? '').trim() }));
}

function formatCommandList(commands: { path: string[]; description: string }[]): string {
  const width = Math.max(...commands.map((c) => c.path.join(' ').length));
  return commands.map((c) => `  solstice ${c.path.join(' ').padEnd(width)}  ${c.description}\n`).join('');
}

/**
 * `solstice --help`: one line per command. Clipanion's own lists each command with its full
 * usage line (~40 setting flags each, 11 KB); each command's --help has those.
 */
function overview(cli: Cli): string {
  return (
    `Solstice CI ${solsticeVersion()}: each CI job a durable Temporal workflow on a fresh machine.\n\n` +
    `Commands:\n${formatCommandList(commandList(cli))}\n` +
    'Run `solstice <command> --help` for what a command does and its options.\n'
  );
}

/**
 * What to say when clipanion found no command for `words`: the subcommands of a group such as
 * `artifacts`, or the one or two nearest command names, instead of its list of every command.
 */
function unknownCommand(cli: Cli, words: string[], help: boolean): { text: string; code: number } {
  const commands = commandList(cli);
  const group = commands.filter((c) => c.path.length > 1 && c.path[0] === words[0]);
  if (group.length > 0)
    return {
      text: `${help ? '' : `\`solstice ${words.join(' ')}\` needs one of:\n`}${formatCommandList(group)}`,
      code: help ? 0 : 2,
    };
  const typed = words[0];
  const names = [...new Set(commands.map((c) => c.path.join(' ')))];
  const nearest = names
    .map((name) => ({
      name,
      d: Math.min(editDistance(typed, name), editDistance(typed, name.split(' ')[0])),
    }))
    .filter(({ d }) => d <= Math.max(2, Math.floor(typed.length / 3)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 2)
    .map(({ name }) => `\`solstice ${name}\``);
  const suggestion =
    nearest.length > 0 ? `did you mean ${nearest.join(' or ')}?` : '`solstice --help` lists the commands';
  return { text: `error: unknown command "${typed}"\nhint:  ${suggestion}\n`, code: 2 };
}

export async function main(argv: string[]): Promise<number> {
  const cli = buildCli();
  if (argv.length === 0 || (argv.length === 1 && ['-h', '--help', 'help'].includes(argv[0]))) {
    process.stdout.write(overview(cli));
    return argv.length === 0 ? 2 : 0;
  }
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
    const words = argv.slice(0, argv.findIndex((a) => a.startsWith('-')) >>> 0);
    const known = commandList(cli).some((c) => c.path.every((w, i) => words[i] === w));
    if (err instanceof Error && err.constructor.name === 'UnknownSyntaxError' && !known && words.length > 0) {
      const { text, code } = unknownCommand(cli, words, argv.includes('--help') || argv.includes('-h'));
      (code === 0 ? process.stdout : process.stderr).write(text);
      return code;
    }
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
