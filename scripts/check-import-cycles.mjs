#!/usr/bin/env node
/**
 * Fails when the TypeScript sources import each other in a cycle (type-only imports count:
 * a cycle of types is still two folders that cannot be read apart). Reads the files that
 * tsconfig.json includes, resolves each relative import with the compiler's own module
 * resolution, and prints every cycle it finds as `a.ts → b.ts → a.ts`.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const configPath = path.join(root, 'tsconfig.json');
const { config, error } = ts.readConfigFile(configPath, ts.sys.readFile);
if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root);
const inTree = (f) =>
  !f.includes(`${path.sep}node_modules${path.sep}`) && !f.includes(`${path.sep}generated${path.sep}`);
const files = parsed.fileNames.filter(inTree);

const edges = new Map();
for (const file of files) {
  const info = ts.preProcessFile(ts.sys.readFile(file) ?? '', true, true);
  const targets = [];
  for (const ref of info.importedFiles) {
    if (!ref.fileName.startsWith('.')) continue;
    const r = ts.resolveModuleName(ref.fileName, file, parsed.options, ts.sys).resolvedModule;
    if (r && !r.isExternalLibraryImport && inTree(r.resolvedFileName) && /\.tsx?$/.test(r.resolvedFileName))
      targets.push(path.resolve(r.resolvedFileName));
  }
  edges.set(path.resolve(file), targets);
}

// Tarjan's strongly connected components: every component with more than one file (or a
// file importing itself) is a cycle.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const components = [];
function visit(v) {
  idx.set(v, index);
  low.set(v, index);
  index++;
  stack.push(v);
  onStack.add(v);
  for (const w of edges.get(v) ?? []) {
    if (!idx.has(w)) {
      visit(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      comp.push(w);
    } while (w !== v);
    if (comp.length > 1 || (edges.get(v) ?? []).includes(v)) components.push(comp);
  }
}
for (const v of edges.keys()) if (!idx.has(v)) visit(v);

const rel = (f) => path.relative(root, f);
if (components.length === 0) {
  console.log(`import cycles: none in ${edges.size} files`);
  process.exit(0);
}
for (const comp of components) {
  // One concrete loop through the component, for a message a person can follow.
  const members = new Set(comp);
  const start = comp[comp.length - 1];
  const loop = [start];
  const seen = new Set([start]);
  let at = start;
  for (;;) {
    const next = (edges.get(at) ?? []).find((w) => members.has(w) && (w === start || !seen.has(w)));
    if (!next) break;
    loop.push(next);
    if (next === start) break;
    seen.add(next);
    at = next;
  }
  console.error(`import cycle: ${loop.map(rel).join(' → ')}`);
}
console.error(
  `${components.length} import cycle(s); move the shared piece into the folder both sides depend on.`,
);
process.exit(1);
