/**
 * What starts the runner on a local-provider host (the bootstrap runs it instead of `node
 * runner.js` when the host placed both): the same bundle, compiled with a V8 code cache the
 * host keeps per runner hash and Node version. Node 20 has no module.enableCompileCache, and
 * compiling the 2.3 MB bundle is most of a runner's start; with the cache a start took a third
 * less CPU here. The first runner of a bundle writes the cache when it exits (with the functions
 * its job compiled); V8 rejects a cache made from other source, flags or version, and the
 * runner then compiles as usual and writes a fresh one.
 *
 * Plain CommonJS for the machine's Node, no imports of ours: it is written out as text.
 */
export const RUNNER_LOADER_SOURCE = `'use strict';
const fs = require('fs');
const path = require('path');
const vm = require('vm');
const Module = require('module');

const file = path.resolve(process.argv[2]);
const cacheFile = process.env.SOLSTICE_RUNNER_CODE_CACHE;
// The job's steps inherit this environment; the cache is the host's.
delete process.env.SOLSTICE_RUNNER_CODE_CACHE;
let source = fs.readFileSync(file, 'utf8');
// A shebang is not JavaScript; a comment of the same length keeps every position.
if (source.startsWith('#!')) source = '//' + source.slice(2);
let cached;
try {
  if (cacheFile) cached = fs.readFileSync(cacheFile);
} catch {
  // None yet: this runner makes it.
}
const script = new vm.Script(Module.wrap(source), { filename: file, cachedData: cached });
if (cacheFile && (!cached || script.cachedDataRejected)) {
  process.once('exit', () => {
    try {
      const tmp = cacheFile + '.' + process.pid + '.tmp';
      fs.writeFileSync(tmp, script.createCachedData());
      fs.renameSync(tmp, cacheFile);
    } catch {
      // A cache is an optimisation: the next runner compiles and tries again.
    }
  });
}
const mod = new Module(file, null);
mod.filename = file;
mod.paths = Module._nodeModulePaths(path.dirname(file));
process.mainModule = mod;
const req = (id) => mod.require(id);
req.main = mod;
req.resolve = (request) => Module._resolveFilename(request, mod);
req.cache = Module._cache;
// As if started as "node runner.js ...": the runner reads its arguments from argv[2] on.
process.argv.splice(1, 2, file);
script.runInThisContext().call(mod.exports, mod.exports, req, mod, file, path.dirname(file));
`;
