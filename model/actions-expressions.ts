/**
 * `${{ }}` expressions of Actions workflows, evaluated with @actions/expressions (bundled into
 * generated/actions/expressions.js). One module for the planner (job `if`, `runs-on`, `name`, matrix
 * values) and the runner (step `if`, `env`, `run`), so both read an expression the same way.
 *
 * The status functions and `hashFiles` are not part of the library: the caller supplies what they
 * mean at its point of the run (`ExpressionStatus`).
 *
 * Bundled into the runner: imports only the generated expressions bundle.
 */
import {
  Evaluator,
  Lexer,
  Parser,
  data,
  truthy,
  type FunctionDefinition,
} from '../generated/actions/expressions';

/** What the status functions return where the expression is evaluated. */
export interface ExpressionStatus {
  /** Every earlier step (or needed job) succeeded. */
  success: boolean;
  /** The run is being cancelled. */
  cancelled: boolean;
  /** `hashFiles(patterns...)`; absent: the function is not available there. */
  hashFiles?: (patterns: string[]) => string;
}

/** The contexts (`github`, `env`, `matrix`, ...), as plain JSON. */
export type ExpressionContexts = Record<string, unknown>;

const STATUS_FUNCTIONS = ['success', 'failure', 'always', 'cancelled'] as const;

/** An expression that cannot be parsed or evaluated; the message is the library's. */
export class ExpressionFailure extends Error {}

function functionsFor(status: ExpressionStatus): FunctionDefinition[] {
  const fn = (name: string, value: () => boolean): FunctionDefinition => ({
    name,
    minArgs: 0,
    maxArgs: 0,
    call: () => new data.BooleanData(value()),
  });
  return [
    fn('success', () => status.success && !status.cancelled),
    fn('failure', () => !status.success && !status.cancelled),
    fn('always', () => true),
    fn('cancelled', () => status.cancelled),
    {
      name: 'hashFiles',
      minArgs: 1,
      maxArgs: 255,
      call: (...args) => {
        if (!status.hashFiles) throw new ExpressionFailure('hashFiles() is only available in steps');
        return new data.StringData(status.hashFiles(args.map((a) => a.coerceString())));
      },
    },
  ];
}

/** Parses an expression (without `${{ }}`); throws ExpressionFailure with the library's message. */
function parse(expr: string, contexts: readonly string[], functions: FunctionDefinition[]) {
  try {
    const lexed = new Lexer(expr).lex();
    return new Parser(lexed.tokens, [...contexts], functions).parse();
  } catch (err) {
    throw new ExpressionFailure((err as Error).message);
  }
}

/** Checks an expression's syntax and that it names only `contexts`; returns the problem or undefined. */
export function expressionProblem(expr: string, contexts: readonly string[]): string | undefined {
  try {
    parse(stripBraces(expr), contexts, functionsFor({ success: true, cancelled: false }));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

function evaluateData(
  expr: string,
  contexts: ExpressionContexts,
  status: ExpressionStatus,
): data.ExpressionData {
  const functions = functionsFor(status);
  const ast = parse(expr, Object.keys(contexts), functions);
  const dict = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary;
  try {
    return new Evaluator(ast, dict, new Map(functions.map((f) => [f.name.toLowerCase(), f]))).evaluate();
  } catch (err) {
    throw new ExpressionFailure((err as Error).message);
  }
}

/** `${{ x }}` → `x`; anything else unchanged. */
export function stripBraces(text: string): string {
  const m = /^\s*\$\{\{([\s\S]*)\}\}\s*$/.exec(text);
  return m && !m[1].includes('}}') ? m[1].trim() : text.trim();
}

/** The value of an expression as plain JSON (strings, numbers, booleans, null, arrays, objects). */
export function evaluate(expr: string, contexts: ExpressionContexts, status: ExpressionStatus): unknown {
  const d = evaluateData(stripBraces(expr), contexts, status);
  return JSON.parse(JSON.stringify(d, data.replacer)) as unknown;
}

/**
 * A job's or step's `if`: as GitHub documents, a condition without a status function means
 * `success() && (condition)`, and an empty one means `success()`.
 */
export function evaluateCondition(
  condition: string | undefined,
  contexts: ExpressionContexts,
  status: ExpressionStatus,
): boolean {
  const expr = condition === undefined || condition.trim() === '' ? 'success()' : stripBraces(condition);
  const full = usesStatusFunction(expr) ? expr : `success() && (${expr})`;
  return truthy(evaluateData(full, contexts, status));
}

/** Whether the condition decides for itself when it runs after a failure (`always()`, `failure()`...). */
export function usesStatusFunction(expr: string): boolean {
  return new RegExp(`\\b(${STATUS_FUNCTIONS.join('|')})\\s*\\(`, 'i').test(expr);
}

/** Where each `${{ }}` of a text is: [start, end) of the whole `${{ ... }}` and its expression. */
export function expressionSpans(text: string): { start: number; end: number; expr: string }[] {
  const spans: { start: number; end: number; expr: string }[] = [];
  let i = 0;
  while ((i = text.indexOf('${{', i)) >= 0) {
    // `}}` inside a quoted string does not end the expression.
    let j = i + 3;
    let quoted = false;
    for (; j < text.length; j++) {
      if (text[j] === "'") quoted = !quoted;
      else if (!quoted && text.startsWith('}}', j)) break;
    }
    if (j >= text.length) break; // unterminated: left as text (the parser reports it)
    spans.push({ start: i, end: j + 2, expr: text.slice(i + 3, j).trim() });
    i = j + 2;
  }
  return spans;
}

/** A string with every `${{ expr }}` replaced by the expression's value as a string. */
export function interpolate(text: string, contexts: ExpressionContexts, status: ExpressionStatus): string {
  const spans = expressionSpans(text);
  if (spans.length === 0) return text;
  let out = '';
  let at = 0;
  for (const s of spans) {
    out += text.slice(at, s.start) + evaluateData(s.expr, contexts, status).coerceString();
    at = s.end;
  }
  return out + text.slice(at);
}

/** The value of a scalar that may be an expression: a whole `${{ x }}` keeps x's type. */
export function evaluateValue(text: string, contexts: ExpressionContexts, status: ExpressionStatus): unknown {
  const spans = expressionSpans(text);
  if (spans.length === 1 && spans[0].start === 0 && spans[0].end === text.length)
    return evaluate(spans[0].expr, contexts, status);
  return interpolate(text, contexts, status);
}
