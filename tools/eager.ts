/**
 * Mark a bundle's functions for eager compilation (steps of `deno task
 * bundle`, before tools/ascii.ts):
 *
 *     tools/eager.ts --mark BUNDLE MARKED   marks what `run hello` calls,
 *                                            as calls of MARK
 *     deno bundle --minify -o BUNDLE MARKED  minifies (keeps the calls)
 *     tools/eager.ts --unmark BUNDLE         makes the calls parentheses
 *
 * (`tools/eager.ts FILE` marks every warm function with parentheses
 * directly, unminified.)
 *
 * `--mark` is profiled: it runs a probing copy of the bundle once
 * ({@link PROFILE_RUNS}) and marks only what that start calls before its
 * first byte. V8's code cache holds every marked function whether it runs
 * or not, and at every start Deno reads it back (~2 ns a byte, the same
 * order as compiling the function lazily): marking all 171 functions, 49
 * module bodies and 90 methods of the warm modules made a 299 KB cache,
 * the 128 that `run hello` calls a 213 KB one, and the first byte ~0.3 ms
 * sooner.
 *
 * V8 compiles a function lazily, on its first call, unless it is a
 * function expression in parentheses (its "PIFE" heuristic: such a
 * function is compiled with the code around it). Deno's code cache holds
 * what V8 compiled before the module ran, so a lazily compiled function is
 * compiled again at every start: ~7 µs per function, and `lguest run`
 * calls some 200 of the bundle's functions before the guest's first byte
 * (boot.first_byte, docs/performance.md). `deno bundle` drops such
 * parentheses; this puts them back where it is safe:
 *
 * - a module's body, `var init_x = __esm({ "x.ts"() { ... } })`, becomes
 *   `"x.ts": (function() { ... })` (`__esm` calls it as a plain function);
 * - a function declared at the top level of the bundle, `function f(...)
 *   { ... }`, becomes `var f = (function f(...) { ... });` at the top of
 *   the file, before any other statement runs: declared functions are
 *   hoisted there anyway, and a function closes over the same top-level
 *   scope wherever it is written, so nothing can see the difference.
 * - a module's `__export(ns, {...})`, its namespace's getters, moves into
 *   its body ({@link exportsOnInit}): made only for a module a run imports;
 * - a function the sources write `(function f() { ... }).bind(null)` (so
 *   that a checkout compiles it with its module: Deno's emit keeps those
 *   parentheses), which `deno bundle` prints `f = function f2() {
 *   ... }.bind(null);`, gets its parentheses back.
 *
 * A block is taken from its first line to the next line that closes it at
 * the same indentation, and kept only if it parses on its own as one
 * function expression (else it stays as it was). Functions of the modules
 * that `run` does not load (`cold`: the disk tools, `lguest cc`, the
 * config file, the KVM engine, the image checks) stay lazy: compiling
 * them eagerly would cost every start. The methods of warm classes are
 * compiled with their module too ({@link eagerMethods}).
 *
 * Minified (identifiers, whitespace, comments: 0.43 MB of code becomes
 * 0.20) the bundle's first byte comes ~0.3 ms sooner; the minifier drops
 * parentheses it does not need, so the marks go through it as calls of a
 * global it cannot rename or remove ({@link MARK}).
 *
 * Last (`--calls`, on the finished bundle): the arrows and function
 * expressions that `run hello` still compiles lazily before its first byte
 * (call arguments above all: a call's own parentheses are no hint), found
 * by V8's own log of such a start ({@link lazySpans}), get parentheses
 * ({@link eagerCalls}).
 *
 * @module
 */

/** Modules of the bundle whose functions stay lazily compiled. */
export const COLD_MODULES: readonly RegExp[] = [
  /^launcher\/(disk|lgfs|cc|wasi_flags|config)\.ts$/,
  /^engines\/(kvm|kvm_sys|wasm_profile|wasm_fuel|wasm_fuel_scanner|wasm_bytes)\.ts$/,
  /^guests\/(?!images\/index\.ts$)/,
];

/**
 * Warm modules whose classes keep lazily compiled methods: a run of a
 * built-in guest without disks or NICs does not call them (the devices it
 * loads on first use, the supervisor of a terminal or --timeout), and a
 * method compiled with the bundle costs every start its share of the code
 * cache.
 */
export const LAZY_METHOD_MODULES: readonly RegExp[] = [
  /^devices\/(block|net\/\w+)\.ts$/,
  /^launcher\/supervisor\.ts$/,
];

/** A function's `length` with these parameters (parsed, never called: no default runs). */
function paramCount(params: string): number {
  try {
    return (new Function(`return (function(${params}) {}).length;`) as () => number)();
  } catch {
    return 0;
  }
}

/** Does `text` parse as exactly one function expression? */
function isOneFunction(text: string): boolean {
  try {
    // Parsed, never called: a syntax error means the block was cut wrong.
    // `import.meta` (main.ts's fromTaskCwd) parses only in a module: an identifier stands for it.
    new Function(`return (${text.replaceAll("import.meta", "import_meta")}\n);`);
    return true;
  } catch {
    return false;
  }
}

/** `name = class [Name] [extends X] {` at any indentation: a class `deno bundle` wrote. */
const CLASS = /^( +)([\w$]+) = class(?: ([\w$]+))?(?: extends [\w$.]+)? \{$/;
/** A method, accessor or static method header on one line (not `constructor`, not `#private`). */
const MEMBER = /^(static )?(async )?(\*)?(get |set )?([A-Za-z_$][\w$]*)\((.*)\) \{$/;
/** A constructor or a `#private` method (not static, not a generator, not an accessor). */
const CALLED = /^(async )?(constructor|#[A-Za-z_$][\w$]*)\((.*)\) \{$/;

/**
 * The top of a bundle whose classes {@link eagerMethods} rewrote: the key
 * of the static method each such class carries (its computed name is where
 * the methods are made) and what puts the methods in place.
 */
const methodHelpers = [`var __eagerKey = Symbol("eager methods"), __eagerHad;`];

/**
 * What puts a rewritten class's methods in place, written out after the
 * class: one `Object.defineProperty` per method or accessor, in the order
 * of the class (an accessor keeps the other half the class still holds).
 * No shared installer: a JavaScript function called for every class runs
 * hot enough at start-up for V8 to queue it for its baseline compiler
 * (Sparkplug), whose first batch then compiles before the first byte
 * (docs/performance.md, boot).
 */
function installs(indent: string, cls: string, list: string, entries: Entry[]): string[] {
  const out: string[] = [];
  entries.forEach(([isStatic, kind, name]) => {
    const target = isStatic ? cls : `${cls}.prototype`;
    const fn = `${list}[${isStatic ? 1 : 0}][${JSON.stringify(entryKey(kind, name))}]`;
    if (kind === "c") return;
    if (kind === "m") {
      out.push(
        `${indent}Object.defineProperty(${target}, "${name}", { value: ${fn}, writable: true, configurable: true });`,
      );
      return;
    }
    out.push(
      `${indent}__eagerHad = Object.getOwnPropertyDescriptor(${target}, "${name}");`,
      `${indent}Object.defineProperty(${target}, "${name}", { get: ${
        kind === "get" ? fn : "__eagerHad?.get"
      }, set: ${kind === "set" ? fn : "__eagerHad?.set"}, configurable: true });`,
    );
  });
  return out;
}

/** One method of a rewritten class: static or not, its kind, its name. */
type Entry = [boolean, "m" | "c" | "get" | "set", string];

/**
 * A method's key in its class's object of functions (`get n` for a getter): the property a
 * function expression is the value of gives it its `name`, the method's (`early`, `get n`).
 */
function entryKey(kind: Entry[1], name: string): string {
  return kind === "get" || kind === "set" ? `${kind} ${name}` : name;
}

/**
 * A class element that runs code while the class is made: a static field (`static x = ...;`,
 * `static x;`, `static #x = ...`, `static [k] = ...`) or a static block (`static {`), written at
 * the class body's indentation; a static method's header is none.
 */
function staticInitializer(element: string): boolean {
  return /^static /.test(element) && !/\) \{$/.test(element);
}

/**
 * Class methods compiled with the module around them. V8 compiles a
 * method lazily, at its first call, and offers no hint for methods; but a
 * class's computed member names are evaluated by the code around the class
 * (here a module body, compiled eagerly), and inside the class body, where
 * its private names (`#x`) are in scope. So each method, getter and setter
 * of a warm class becomes a
 * parenthesised function expression made in the computed name of one extra
 * static method (`static [(__eagerN = [...], __eagerKey)]() {}`, never
 * called), and one `Object.defineProperty` each ({@link installs}) defines
 * them on the class (or its prototype) right after it: non-enumerable,
 * writable and configurable, as class methods are. The functions are
 * anonymous, as a method binds no name in its own body (a named function
 * expression would hide an outer function of the same name, and the
 * minifier drops such names): each is the value of a property of one of two
 * object literals, the prototype's and the class's (`__eagerN = [{ early:
 * (function() {...}), "get n": ... }, { make: ... }]`), whose key gives it
 * its `name` as the method's was (`early`, `get n`), at no cost at run
 * time. (One difference stays: a function expression can be called with
 * `new` and has a `prototype`, a method has neither; nothing in the bundle
 * calls a method with `new`.) A class with a static field or block defines
 * them in a static block at the top of its body instead (`this` is the class there), which runs
 * before any other static initialiser: after the class would be too late
 * for one that calls a moved static method. If its moved functions use its
 * own name (`_X`, written `X` in them: see below), that block first
 * assigns `X = this`, the class `X = class _X {...}` assigns once it is
 * made: as `_X` is, `X` is then the class while its static initialisers
 * run (the bundle's code in the class names it `_X`; only code that
 * would read the unassigned `X`, and fail, sees a difference). A
 * constructor (of a class that extends none: `super()` belongs in a
 * constructor) and a `#private` method, which can be defined nowhere else,
 * keep a stub in the class, `#m(a) { return __eagerN[0]["#m"].apply(this,
 * arguments); }` (parameters only to keep its
 * `length`), and their body goes into such a function (kind `"c"`, which
 * is not installed): the stub is compiled at its first call, the
 * body with the module (a constructor's fields are set before its body, in
 * the stub, as before; one that reads `new.target` stays). `deno bundle`
 * writes no `super.x`, which a plain function could not hold; a class whose
 * rewrite does not parse on its own stays as it was.
 */
function eagerMethods(
  lines: string[],
  cold: (module: string) => boolean,
  pife: string,
  opts: EagerOptions,
): {
  lines: string[];
  vars: string[];
  methods: number;
} {
  const out: string[] = [];
  const vars: string[] = [];
  let module = "", methods = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const header = /^\/\/ (\S+\.[jt]s)$/.exec(line);
    if (header) module = header[1];
    const cls = CLASS.exec(line);
    if (!cls || cold(module)) {
      out.push(line);
      continue;
    }
    const [, indent, name, own] = cls;
    // The class's own name (`X = class _X`) is in its TDZ in a computed name, and the minifier
    // makes every use there, even in a function called later, throw: the functions use `X`.
    const ownName = own && own !== name
      ? new RegExp(`(?<![\\w$.])${own.replaceAll("$", "\\$")}(?![\\w$])`, "g")
      : null;
    const end = lines.indexOf(`${indent}};`, i + 1);
    if (end < 0) {
      out.push(line);
      continue;
    }
    const inner = `${indent}  `;
    const kept: string[] = [];
    const defs: string[] = [];
    const staticDefs: string[] = [];
    const made: Entry[] = [];
    const list = `__eager${vars.length}`;
    let count = 0, renamed = false;
    const body = (b: string) => {
      if (!ownName) return b;
      const r = b.replace(ownName, name);
      if (r !== b) renamed = true;
      return r;
    };
    for (let k = i + 1; k < end; k++) {
      const l = lines[k];
      const c = l.startsWith(inner) ? CALLED.exec(l.slice(inner.length)) : null;
      if (c) {
        const [, async_ = "", member, params] = c;
        const close = lines.indexOf(`${inner}}`, k + 1);
        const inside = close > k && close < end ? lines.slice(k + 1, close) : [];
        const key = `${name}.${member}`;
        // A derived class's constructor calls super(), which only a constructor may.
        const ctor = member === "constructor";
        if (
          inside.length > 0 && !(ctor && (async_ || / extends /.test(line))) &&
          !inside.some((b) => b.includes("new.target")) && (!opts.only || opts.only.has(key))
        ) {
          defs.push(
            `${inner}  ${JSON.stringify(member)}: ${pife}(${async_}function(${params}) {${
              probe(opts, key)
            }`,
            ...lines.slice(k + 1, close).map(body),
            `${inner}  }),`,
          );
          made.push([false, "c", member]);
          // The stub keeps the function's length (parameters before the first default or rest).
          const stub = Array.from({ length: paramCount(params) }, (_, j) => `__arg${j}`).join(", ");
          kept.push(
            `${inner}${member}(${stub}) {`,
            `${inner}  return ${list}[0][${JSON.stringify(member)}].apply(this, arguments);`,
            `${inner}}`,
          );
          count++;
          k = close;
          continue;
        }
      }
      const m = l.startsWith(inner) ? MEMBER.exec(l.slice(inner.length)) : null;
      const close = m && m[5] !== "constructor" ? lines.indexOf(`${inner}}`, k + 1) : -1;
      const key = m ? `${name}.${m[4] ?? ""}${m[5]}` : "";
      // (`__proto__: ...` in an object literal would set its prototype: such a method stays.)
      if (
        m && m[5] !== "__proto__" && close > k && close < end && (!opts.only || opts.only.has(key))
      ) {
        const [, static_, async_ = "", star = "", accessor, member, params] = m;
        const kind = accessor ? accessor.trim() as "get" | "set" : "m";
        made.push([!!static_, kind, member]);
        (static_ ? staticDefs : defs).push(
          `${inner}  ${
            JSON.stringify(entryKey(kind, member))
          }: ${pife}(${async_}function${star}(${params}) {${probe(opts, key)}`,
          ...lines.slice(k + 1, close).map(body),
          `${inner}  }),`,
        );
        count++;
        k = close;
      } else kept.push(l);
    }
    // A static initialiser runs while the class is made: the methods are defined before it.
    const early = kept.some((l) =>
      l.startsWith(inner) && l[inner.length] !== " " && staticInitializer(l.slice(inner.length))
    );
    if (count === 0) {
      out.push(line);
      continue;
    }
    const first = early
      ? [
        `${inner}static {`,
        ...(renamed ? [`${inner}  ${name} = this;`] : []),
        ...installs(`${inner}  `, "this", list, made),
        `${inner}}`,
      ]
      : [];
    const rewritten = [
      line,
      ...first,
      ...kept,
      `${inner}static [(${list} = [{`,
      ...defs,
      `${inner}}, {`,
      ...staticDefs,
      `${inner}}], __eagerKey)]() {`,
      `${inner}}`,
      `${indent}};`,
    ];
    const klass = rewritten.join("\n").slice(line.indexOf("class"), -1);
    if (!isOneFunction(klass)) {
      out.push(line);
      continue;
    }
    vars.push(list);
    methods += count;
    out.push(...rewritten, ...(early ? [] : installs(indent, name, list, made)));
    i = end;
  }
  return { lines: out, vars, methods };
}

/** What {@link eagerFunctions} marks. */
export interface EagerOptions {
  /**
   * Mark only these (a profile: {@link profile}): a function's name, a
   * module's path, `Class.method` (`Class.get name` for an accessor).
   */
  only?: ReadonlySet<string>;
  /** Make each function that would be marked report its first call instead (for {@link profile}). */
  probe?: boolean;
}

/** The line a probing bundle writes to stderr at its first stdout write: this, then a JSON list. */
const HITS = "__lguestEagerHits__ ";

/** A probing bundle's call that reports `key` (nothing when not probing). */
function probe(opts: EagerOptions, key: string): string {
  return opts.probe ? ` __lguestHit(${JSON.stringify(key)});` : "";
}

/** What a probing bundle runs first: it collects the keys and writes them out at the first byte. */
const PROBE_HEAD = [
  `var __lguestHits = new Set(), __lguestHit = (k) => void __lguestHits.add(k);`,
  `{`,
  `  const write = Deno.stdout.writeSync.bind(Deno.stdout);`,
  `  let said = false;`,
  `  Deno.stdout.writeSync = (b) => {`,
  `    if (!said) {`,
  `      said = true;`,
  `      const list = JSON.stringify([...__lguestHits]);`,
  `      Deno.stderr.writeSync(new TextEncoder().encode(\`${HITS}\${list}\\n\`));`,
  `    }`,
  `    return write(b);`,
  `  };`,
  `}`,
];

/**
 * Put back the parentheses of the functions the sources write as
 * `(function f() { ... }).bind(null)` (Deno's TypeScript emit keeps those, so
 * a checkout compiles them eagerly; `deno bundle` drops them): an
 * assignment `f = function f2(...) {` whose block closes with `}.bind(null);`
 * at its indentation, at the top level or in a module body (key: `f`).
 * Marks `lines` in place (with `pife` before the parenthesis); returns how
 * many.
 */
function eagerBound(lines: string[], pife: string, opts: EagerOptions): number {
  let module = "", marked = 0;
  for (let i = 0; i < lines.length; i++) {
    const header = /^\/\/ (\S+\.[jt]s)$/.exec(lines[i]);
    if (header) module = header[1];
    const m = /^( *)((?:var |let |const )?([\w$]+) = )((?:async )?function\b.*\{)$/.exec(lines[i]);
    if (!m || COLD_MODULES.some((re) => re.test(module))) continue;
    const [, indent, lhs, key, head] = m;
    if (opts.only && !opts.only.has(key)) continue;
    let end = i + 1;
    while (end < lines.length && !lines[end].startsWith(`${indent}}`)) end++;
    if (lines[end] !== `${indent}}.bind(null);`) continue;
    const body = [head, ...lines.slice(i + 1, end), `${indent}}`].join("\n");
    if (!isOneFunction(body)) continue;
    lines[i] = `${indent}${lhs}${pife}(${head}${probe(opts, key)}`;
    lines[end] = `${indent}}).bind(null);`;
    marked++;
    i = end;
  }
  return marked;
}

/**
 * Each module's `__export(ns, { name: () => name, ... })`, which `deno
 * bundle` writes at the top level for every module imported dynamically
 * (its namespace object, a getter per export), moved to the start of that
 * module's body: every start defined the 121 getters of 24 modules, the 21
 * images' among them, for the one or two a run imports. The namespace is
 * read only after its module's body ran (`(init_x(), x_exports)` is how
 * the bundle imports it), and the body runs once. Returns how many moved.
 */
function exportsOnInit(lines: string[]): number {
  let moved = 0;
  for (let i = 0; i < lines.length; i++) {
    if (!/^__export\([\w$]+, \{$/.test(lines[i])) continue;
    const end = lines.indexOf("});", i + 1);
    if (end < 0) continue;
    // The module's body: the first `  "path"() {` of an `__esm({` after it, before the next module.
    let body = end + 1;
    while (body < lines.length && !/^\/\/ \S+\.[jt]s$/.test(lines[body])) {
      if (/^ {2}"[^"\\]+"\(\) \{$/.test(lines[body]) && lines[body - 1].endsWith("= __esm({")) {
        break;
      }
      body++;
    }
    if (body >= lines.length || !/^ {2}"/.test(lines[body])) continue;
    const call = definedAtOnce(lines.slice(i, end + 1)).map((l) => `    ${l}`);
    lines.splice(body + 1, 0, ...call);
    lines.splice(i, end + 1 - i);
    moved++;
    i--;
  }
  return moved;
}

/**
 * An `__export(ns, { name: () => name, ... })` call as one
 * `Object.defineProperties(ns, { name: { get: () => name, enumerable: true }, ... })`:
 * the same getters (enumerable, not configurable, as `__export`'s
 * `defineProperty` makes them), in the same order, with no loop of
 * JavaScript around them: `__export`, called for each namespace a run
 * makes, ran hot enough to be queued for V8's baseline compiler
 * (docs/performance.md, boot). A call of another shape stays as it was.
 */
function definedAtOnce(call: string[]): string[] {
  const head = /^__export\(([\w$]+), \{$/.exec(call[0]);
  const entries = call.slice(1, -1).map((l) =>
    /^( +)([\w$]+|"[^"\\]*"): (\(\) => [\w$]+)(,?)$/.exec(l)
  );
  if (!head || call[call.length - 1] !== "});" || entries.some((e) => !e)) return call;
  return [
    `Object.defineProperties(${head[1]}, {`,
    ...entries.map((e) => `${e![1]}${e![2]}: { get: ${e![3]}, enumerable: true }${e![4]}`),
    "});",
  ];
}

/** The bundle `text` with its warm functions marked for eager compilation. */
export function eagerFunctions(
  text: string,
  pife = "",
  opts: EagerOptions = {},
): { text: string; functions: number; modules: number; methods: number } {
  const lines = text.split("\n");
  exportsOnInit(lines);
  const hoisted: string[] = [];
  const out: string[] = [];
  let module = "";
  let functions = eagerBound(lines, pife, opts), modules = 0;
  const cold = () => COLD_MODULES.some((re) => re.test(module));
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const header = /^\/\/ (\S+\.[jt]s)$/.exec(line);
    if (header) module = header[1];
    const fn = /^(async )?function(\*?) ([\w$]+)\(/.exec(line);
    const esm = /^ {2}("[^"\\]+")\(\) \{$/.exec(line);
    const key = fn ? fn[3] : esm ? esm[1].slice(1, -1) : "";
    const wanted = !opts.only || opts.only.has(key);
    if ((fn || (esm && out.at(-1)?.endsWith("= __esm({"))) && !cold() && wanted) {
      const close = fn ? "}" : "  }";
      let end = i;
      while (end < lines.length && lines[end] !== close) end++;
      const block = lines.slice(i, end + 1);
      if (fn && end < lines.length && line.endsWith("{")) {
        const [, async_ = "", star, name] = fn;
        const expr = `${async_}function${star} ${name}${line.slice(fn[0].length - 1)}`;
        const body = [expr + probe(opts, key), ...block.slice(1)].join("\n");
        if (isOneFunction(body)) {
          hoisted.push(`var ${name} = ${pife}(${body});`);
          functions++;
          i = end;
          continue;
        }
      } else if (esm && end < lines.length) {
        const body = ["function() {" + probe(opts, key), ...block.slice(1)].join("\n");
        if (isOneFunction(body)) {
          out.push(`  ${esm[1]}: ${pife}(${body})`);
          modules++;
          i = end;
          continue;
        }
      }
    }
    out.push(line);
  }
  // (A marked block is one element of `out`: lines again.)
  const classes = eagerMethods(
    out.join("\n").split("\n"),
    (m) => [...COLD_MODULES, ...LAZY_METHOD_MODULES].some((re) => re.test(m)),
    pife,
    opts,
  );
  if (opts.probe) hoisted.unshift(...PROBE_HEAD);
  if (classes.methods > 0) {
    hoisted.unshift(...methodHelpers, `var ${classes.vars.join(", ")};`);
  }
  // Before everything but a `#!` line, which must stay first.
  const body = classes.lines;
  const head = body[0]?.startsWith("#!") ? body.splice(0, 1) : [];
  return {
    text: [...head, ...hoisted, ...body].join("\n"),
    functions,
    modules,
    methods: classes.methods,
  };
}

/**
 * The call that stands for a parenthesis through the minifier: `deno
 * bundle --minify` prints a function expression without the parentheses
 * around it, but keeps a call of a global it does not know,
 * `__lguestEager__(function ...)`, which {@link unmark} turns back into
 * `(function ...)` (the call's own parentheses are the ones V8 looks for).
 */
export const MARK = "__lguestEager__";

/** `text` with every {@link MARK} call turned back into the parenthesis it stands for. */
export function unmark(text: string): { text: string; marks: number } {
  const parts = text.split(`${MARK}(`);
  const out = parts.join("(");
  if (out.includes(MARK)) throw new Error(`${MARK} is left in the bundle where it is no call`);
  return { text: out, marks: parts.length - 1 };
}

/**
 * The starts a profiled bundle is compiled for: `run hello`, the path
 * every run of a built-in guest takes (boot.first_byte). What only other
 * runs call (a disk, a NIC, brotli for the large images, Lua's start) is
 * compiled at its first call: with Lua's start profiled too (22 functions
 * and 11 methods more) `run hello`'s first byte came ~0.2 ms later.
 */
export const PROFILE_RUNS: readonly (readonly string[])[] = [["run", "hello"]];

/**
 * What the starts of {@link PROFILE_RUNS} call before their first byte:
 * the bundle `text` probed (every function {@link eagerFunctions} would
 * mark reports its first call), written beside it in `dir`, run once per
 * start with no permission.
 */
export async function profile(text: string, dir: string): Promise<Set<string>> {
  const file = `${dir}/.lguest.profile.js`;
  await Deno.writeTextFile(file, eagerFunctions(text, "", { probe: true }).text);
  try {
    const hits = new Set<string>();
    for (const args of PROFILE_RUNS) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--no-prompt", "--no-code-cache", file, ...args],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      const err = new TextDecoder().decode(out.stderr);
      const line = err.split("\n").find((l) => l.startsWith(HITS));
      if (!out.success || line === undefined) {
        throw new Error(`eager: the profile run 'lguest ${args.join(" ")}' failed:\n${err}`);
      }
      for (const key of JSON.parse(line.slice(HITS.length)) as string[]) hits.add(key);
    }
    return hits;
  } finally {
    await Deno.remove(file);
  }
}

/**
 * `tools/eager.ts --mark`: the bundle `text` with what {@link PROFILE_RUNS}
 * call marked, as calls of {@link MARK} (for the minifier); the profile
 * runs in `dir`.
 */
export async function markProfiled(
  text: string,
  dir: string,
): Promise<ReturnType<typeof eagerFunctions> & { profiled: number }> {
  if (text.includes(MARK)) throw new Error(`eager: the bundle already holds ${MARK}`);
  const only = await profile(text, dir);
  return { ...eagerFunctions(text, MARK, { only }), profiled: only.size };
}

/** Does `text` parse as one expression (module syntax and private names stood in for)? */
function isOneExpression(text: string): boolean {
  try {
    // `import.meta` parses only in a module, `this.#x` only in its class: parsed, never called.
    const plain = text.replaceAll("import.meta", "import_meta").replace(/#(?=[A-Za-z_$])/g, "_$");
    new Function(`return (${plain}\n);`);
    return true;
  } catch {
    return false;
  }
}

/**
 * Parentheses around the arrows and function expressions of `text` that
 * `spans` name (V8's source ranges of functions it compiled lazily:
 * {@link lazySpans}): V8 then compiles each with the function around it,
 * into Deno's code cache. A range is taken only where it is plainly a
 * whole expression: an arrow or a function expression (V8's range of the
 * latter starts at its parameters: the keyword and name are taken in),
 * after a token an expression follows (`( , = : [ ? > & | !`, `return`),
 * before one that ends it (`) , ; } ] :`), and parsing alone; methods,
 * constructors, accessors and declarations are left as they are. A
 * parenthesised expression is the same expression: nothing else changes.
 */
export function eagerCalls(
  text: string,
  spans: readonly (readonly [number, number])[],
): { text: string; wrapped: number } {
  const inserts: [number, string][] = [];
  const seen = new Set<number>();
  for (const [start, end] of spans) {
    let a = start;
    const keyword = /(?:async\s*)?function\*?\s*[\w$]*\s*$/.exec(
      text.slice(Math.max(0, a - 80), a),
    );
    if (keyword) a -= keyword[0].length;
    else if (!/^(?:async\s*)?(?:\([^]*?\)|[\w$]+)\s*=>/.test(text.slice(a, end))) continue;
    if (seen.has(a)) continue;
    const before = text.slice(Math.max(0, a - 8), a).trimEnd();
    if (!/(?:[(,=:[?>&|!]|(?:^|[^\w$])return)$/.test(before)) continue;
    if (!/^\s*[),;}\]:]/.test(text.slice(end, end + 80))) continue;
    if (!isOneExpression(text.slice(a, end))) continue;
    seen.add(a);
    inserts.push([a, "("], [end, ")"]);
  }
  // From the end, so that each position is still the original's (a nested range's closing
  // parenthesis and its outer one's at the same place are both ")").
  inserts.sort((x, y) => y[0] - x[0]);
  let out = text;
  for (const [at, paren] of inserts) out = out.slice(0, at) + paren + out.slice(at);
  return { text: out, wrapped: inserts.length / 2 };
}

/** The name of the probe's function whose lazy compile marks the first byte in V8's log. */
const FIRST_BYTE = "__lguestFirstByte__";

/**
 * The source ranges of the functions of `file` (a bundle) that V8 compiles
 * lazily before the first byte of each start of {@link PROFILE_RUNS}: V8's
 * function-events log of such a start (no code cache: what the cache would
 * hold is what V8 compiles with the script), cut where a `--preload` probe
 * compiles its own function at the first stdout write. The log and the
 * probe are written in `dir` and removed.
 */
export async function lazySpans(file: string, dir: string): Promise<[number, number][]> {
  const probe = `${dir}/.lguest.calls-probe.js`;
  const log = `${dir}/.lguest.calls.log`;
  await Deno.writeTextFile(
    probe,
    `const mark = function ${FIRST_BYTE}() {}, write = Deno.stdout.writeSync.bind(Deno.stdout);\n` +
      `let first = true;\n` +
      `Deno.stdout.writeSync = (b) => { if (first) { first = false; mark(); } return write(b); };\n`,
  );
  try {
    const spans: [number, number][] = [];
    // The bundle's script, by its name (the probe's is another): no permission to ask the cwd.
    const name = `/${encodeURIComponent(file.replace(/^.*\//, ""))}`;
    for (const args of PROFILE_RUNS) {
      await Deno.remove(log).catch(() => {});
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--no-prompt",
          "--no-code-cache",
          "--preload",
          probe,
          `--v8-flags=--log-function-events,--logfile=${log},--no-logfile-per-isolate`,
          file,
          ...args,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).output();
      if (!out.success) {
        const err = new TextDecoder().decode(out.stderr);
        throw new Error(`eager: the profile run 'lguest ${args.join(" ")}' failed:\n${err}`);
      }
      // script-details,ID,URL,... and function,parse-function,ID,START,END,TIME,STAMP,NAME
      let id: string | undefined;
      let cut = false;
      for (const line of (await Deno.readTextFile(log)).split("\n")) {
        const f = line.split(",");
        if (f[0] === "script-details" && f[2]?.startsWith("file:") && f[2].endsWith(name)) {
          id = f[1];
        }
        if (f[0] !== "function" || f[1] !== "parse-function") continue;
        if (f[7] === FIRST_BYTE) {
          cut = true;
          break;
        }
        if (f[2] === id) spans.push([Number(f[3]), Number(f[4])]);
      }
      if (id === undefined || !cut) {
        throw new Error(`eager: V8's log of 'lguest ${args.join(" ")}' has no ${file} or no byte`);
      }
    }
    return spans;
  } finally {
    await Deno.remove(probe).catch(() => {});
    await Deno.remove(log).catch(() => {});
  }
}

if (import.meta.main) {
  const usage = () => {
    console.error("usage: tools/eager.ts FILE | --mark FILE OUT | --unmark FILE | --calls FILE");
    Deno.exit(125);
  };
  const [first, file = "", out = file] = Deno.args;
  if (first === "--calls" && Deno.args.length === 2) {
    const text = await Deno.readTextFile(file);
    const spans = await lazySpans(file, file.replace(/[^/]*$/, "") || ".");
    const r = eagerCalls(text, spans);
    await Deno.writeTextFile(file, r.text);
    console.error(
      `eager: ${r.wrapped} of ${spans.length} lazily compiled function(s) parenthesised`,
    );
    Deno.exit(0);
  }
  if (first === "--unmark" && Deno.args.length === 2) {
    const r = unmark(await Deno.readTextFile(file));
    await Deno.writeTextFile(file, r.text);
    console.error(`eager: ${r.marks} mark(s) made parentheses`);
    Deno.exit(0);
  }
  const mark = first === "--mark";
  if (mark ? Deno.args.length !== 3 : Deno.args.length !== 1) usage();
  const input = await Deno.readTextFile(mark ? file : first);
  const dir = (mark ? out : first).replace(/[^/]*$/, "") || ".";
  const { text, functions, modules, methods } = mark
    ? await markProfiled(input, dir)
    : eagerFunctions(input);
  await Deno.writeTextFile(mark ? out : first, text);
  console.error(
    `eager: ${functions} function(s), ${modules} module bod(ies), ${methods} method(s) marked`,
  );
}
