#!/usr/bin/env node
/** `solstice`: the command-line interface. Errors print as one line plus a hint; --verbose adds stacks. */
import { Builtins, Cli, type CommandClass } from 'clipanion';
import { readSetting } from '../platform/config';
import { printError } from './output';
import { solsticeVersion } from '../platform/version';
import { editDistance } from '../workflow-file/suggest';

/**
 * Every command, in the order `solstice --help` lists them, with the words that run it and where
 * its class lives. Loading a command module is cheap, but clipanion builds a parser state machine
 * over every registered command's options (about 40 setting flags each), which cost ~75 ms of a
 * 200 ms `--version`: a run registers only the command its words name, and every command only
 * when it must list or suggest them. tests/unit/cli/command-index.test.ts keeps each `words` equal
 * to its class's `paths`.
 */
export const COMMAND_INDEX: readonly { words: string; load: () => Promise<CommandClass> }[] = [
  { words: 'up', load: async () => (await import('./commands/services')).UpCommand },
  { words: 'ci-local', load: async () => (await import('./commands/ci-local')).CiLocalCommand },
  { words: 'enqueue', load: async () => (await import('./commands/enqueue')).EnqueueCommand },
  { words: 'logs', load: async () => (await import('./commands/logs')).LogsCommand },
  { words: 'artifacts list', load: async () => (await import('./commands/artifacts')).ArtifactsListCommand },
  { words: 'artifacts get', load: async () => (await import('./commands/artifacts')).ArtifactsGetCommand },
  { words: 'status', load: async () => (await import('./commands/jobs')).StatusCommand },
  { words: 'jobs', load: async () => (await import('./commands/jobs')).JobsCommand },
  { words: 'pipelines', load: async () => (await import('./commands/pipelines')).PipelinesCommand },
  { words: 'cancel', load: async () => (await import('./commands/pipelines')).CancelCommand },
  { words: 'rerun', load: async () => (await import('./commands/pipelines')).RerunCommand },
  { words: 'db migrate', load: async () => (await import('./commands/db')).DbMigrateCommand },
  { words: 'temporal setup', load: async () => (await import('./commands/temporal')).TemporalSetupCommand },
  { words: 'gc', load: async () => (await import('./commands/gc')).GcCommand },
  { words: 'pool status', load: async () => (await import('./commands/pool')).PoolStatusCommand },
  { words: 'token create', load: async () => (await import('./commands/token')).TokenCreateCommand },
  { words: 'token list', load: async () => (await import('./commands/token')).TokenListCommand },
  { words: 'token revoke', load: async () => (await import('./commands/token')).TokenRevokeCommand },
  { words: 'doctor', load: async () => (await import('./commands/doctor')).DoctorCommand },
  { words: 'worker', load: async () => (await import('./commands/services')).WorkerCommand },
  { words: 'log-service', load: async () => (await import('./commands/services')).LogServiceCommand },
  { words: 'job-page', load: async () => (await import('./commands/services')).JobPageCommand },
  { words: 'runner-serve', load: async () => (await import('./commands/services')).RunnerServeCommand },
  { words: 'bridge', load: async () => (await import('./commands/ingress')).BridgeCommand },
  { words: 'webhook serve', load: async () => (await import('./commands/ingress')).WebhookServeCommand },
  {
    words: 'workflow validate',
    load: async () => (await import('./commands/workflow')).WorkflowValidateCommand,
  },
  { words: 'workflow show', load: async () => (await import('./commands/workflow')).WorkflowShowCommand },
];

function newCli(commands: CommandClass[]): Cli {
  const cli = new Cli({
    binaryLabel: 'Solstice CI',
    binaryName: 'solstice',
    binaryVersion: solsticeVersion(),
    enableColors: Boolean(process.stdout.isTTY) && !readSetting('noColor'),
  });
  for (const c of [...commands, Builtins.HelpCommand, Builtins.VersionCommand]) cli.register(c);
  return cli;
}

/** A CLI that knows every command: for help, suggestions and the settings' tests. */
export async function buildCli(): Promise<Cli> {
  return newCli(await Promise.all(COMMAND_INDEX.map((c) => c.load())));
}

/**
 * The one command `argv` names (the longest `words` its leading words match), or none:
 * `--version`, a group such as `artifacts` alone, a typo, or no words at all.
 */
function namedCommand(argv: string[]): (typeof COMMAND_INDEX)[number] | undefined {
  const words = argv.slice(0, argv.findIndex((a) => a.startsWith('-')) >>> 0);
  let best: (typeof COMMAND_INDEX)[number] | undefined;
  for (const entry of COMMAND_INDEX) {
    const path = entry.words.split(' ');
    if (path.every((w, i) => words[i] === w) && path.length > (best?.words.split(' ').length ?? 0))
      best = entry;
  }
  return best;
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
  if (argv.length === 0 || (argv.length === 1 && ['-h', '--help', 'help'].includes(argv[0]))) {
    process.stdout.write(overview(await buildCli()));
    return argv.length === 0 ? 2 : 0;
  }
  let verbose = argv.includes('--verbose');
  // A run with no words (`--version`) needs only clipanion's builtins.
  const named = argv[0]?.startsWith('-') ? null : namedCommand(argv);
  let cli: Cli | undefined;
  try {
    // In the try: a malformed SOLSTICE_DEBUG is reported like any other bad setting.
    verbose ||= readSetting('debug');
    cli = named === undefined ? await buildCli() : newCli(named ? [await named.load()] : []);
    let command;
    try {
      command = cli.process(argv);
    } catch (err) {
      // Words that name no command are answered from all of them (the group's list, the
      // nearest names), exactly as if every command had been registered from the start.
      if (named === undefined || !(err instanceof Error && err.constructor.name === 'UnknownSyntaxError'))
        throw err;
      cli = await buildCli();
      command = cli.process(argv);
    }
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
    if (!cli) return printError(err, verbose);
    const words = argv.slice(0, argv.findIndex((a) => a.startsWith('-')) >>> 0);
    const known = COMMAND_INDEX.some((c) => c.words.split(' ').every((w, i) => words[i] === w));
    if (err instanceof Error && err.constructor.name === 'UnknownSyntaxError' && !known && words.length > 0) {
      const { text, code } = unknownCommand(
        await buildCli(),
        words,
        argv.includes('--help') || argv.includes('-h'),
      );
      (code === 0 ? process.stdout : process.stderr).write(text);
      return code;
    }
    if (err instanceof Error && err.constructor.name === 'UnknownSyntaxError' && words.length === 0) {
      // `solstice --bogus`: clipanion would print every command's usage line as candidates.
      process.stderr.write(
        `error: unknown option "${argv[0]}"\nhint:  \`solstice --help\` lists the commands\n`,
      );
      return 2;
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
