/**
 * What a start must not do before its first byte reaches stdout (boot.first_byte,
 * docs/performance.md), as JavaScript to run before the program: it wraps each such call
 * and counts it in \`counts\` (FFI libraries loaded, timers, Workers, Errors, the program's
 * and Deno's own thrown by a \`Deno.*\` call, JSPI Suspendings, permission queries, digests,
 * regular expressions run, text encoders made or used).
 * tests/boot_test.ts runs the CLI after it, tests/ship_test.ts preloads it into the bundle.
 *
 * @module
 */

/** The zero counts: what every start of \`run hello\` must have at its first byte. */
export const NONE = {
  dlopen: 0,
  timers: 0,
  workers: 0,
  errors: 0,
  suspending: 0,
  queries: 0,
  digests: 0,
  regexps: 0,
  encoders: 0,
} as const;

/** Defines \`counts\` and the wrappers that count. */
export const COUNTING = `
const counts = {
  dlopen: 0, timers: 0, workers: 0, errors: 0, suspending: 0, queries: 0, digests: 0, regexps: 0,
  encoders: 0,
};
const dlopen = Deno.dlopen, setTimeout_ = globalThis.setTimeout;
const setInterval_ = globalThis.setInterval, Worker_ = globalThis.Worker;
Deno.dlopen = (...a) => { counts.dlopen++; return dlopen(...a); };
globalThis.setTimeout = (...a) => { counts.timers++; return setTimeout_(...a); };
globalThis.setInterval = (...a) => { counts.timers++; return setInterval_(...a); };
globalThis.Worker = class extends Worker_ {
  constructor(...a) { counts.workers++; super(...a); }
};
const Suspending_ = WebAssembly.Suspending;
WebAssembly.Suspending = class extends Suspending_ {
  constructor(...a) { counts.suspending++; super(...a); }
};
// A process's first crypto.subtle.digest costs 0.3-0.7 ms (launcher/images.ts checks the digest
// of a payload file beside its module, not of hello's inline one).
const digest_ = crypto.subtle.digest.bind(crypto.subtle);
crypto.subtle.digest = (...a) => { counts.digests++; return digest_(...a); };
// Permission queries: the first ones of a process cost ~0.1 ms (launcher/runner.ts asks them
// only for a file it checks; main.ts's task check is not the CLI's).
for (const name of ["query", "querySync", "request", "requestSync"]) {
  const f = Deno.permissions[name].bind(Deno.permissions);
  Deno.permissions[name] = (...a) => { counts.queries++; return f(...a); };
}
// The CLI's own Error classes extend this one (Deno's internal errors are not counted);
// instanceof Error still holds for every error.
const Error_ = globalThis.Error;
globalThis.Error = class extends Error_ {
  constructor(...a) { counts.errors++; super(...a); }
  static [Symbol.hasInstance](x) { return x instanceof Error_; }
};
// Deno's own errors (a failed stat, open, ...) are not made through the class above: counted
// where they are thrown. A process's first one cost the bundle ~6 ms (docs/performance.md).
for (const name of Object.keys(Deno)) {
  const f = Deno[name];
  if (typeof f !== "function" || /^[A-Z]/.test(name) || name === "exit") continue;
  try {
    Deno[name] = function (...a) {
      try {
        const r = f.apply(this, a);
        if (r instanceof Promise) return r.catch((e) => { counts.errors++; throw e; });
        return r;
      } catch (e) {
        counts.errors++;
        throw e;
      }
    };
  } catch { /* a read-only property */ }
}
// A process's first regular expression costs V8 ~0.1 ms, each one after ~0.015 (compiled at its
// first run); every test, match, replace and split with one runs exec (wrapped last: the loop
// above runs one). A process's first TextEncoder and its first encode ~0.05 ms each; a run
// prints bytes (launcher/cli.ts DEFAULT_MEMORY_BYTES, sys/stdio.ts, abi/lgfs_magic.ts).
const exec_ = RegExp.prototype.exec;
RegExp.prototype.exec = function (s) { counts.regexps++; return exec_.call(this, s); };
const TextEncoder_ = globalThis.TextEncoder;
const encode_ = TextEncoder_.prototype.encode, encodeInto_ = TextEncoder_.prototype.encodeInto;
TextEncoder_.prototype.encode = function (s) { counts.encoders++; return encode_.call(this, s); };
TextEncoder_.prototype.encodeInto = function (s, d) {
  counts.encoders++;
  return encodeInto_.call(this, s, d);
};
globalThis.TextEncoder = class extends TextEncoder_ {
  constructor() { counts.encoders++; super(); }
};
`;
