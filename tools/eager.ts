/**
 * Mark a bundle's functions for eager compilation (a step of `deno task
 * bundle`, before tools/ascii.ts).
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
 *
 * A block is taken from its first line to the next line that closes it at
 * the same indentation, and kept only if it parses on its own as one
 * function expression (else it stays as it was). Functions of the modules
 * that `run` does not load (`cold`: the disk tools, `lguest cc`, the
 * config file, the KVM engine, the image checks) stay lazy: compiling
 * them eagerly would cost every start.
 *
 * @module
 */

/** Modules of the bundle whose functions stay lazily compiled. */
export const COLD_MODULES: readonly RegExp[] = [
  /^launcher\/(disk|lgfs|cc|wasi_flags|config)\.ts$/,
  /^engines\/(kvm|kvm_sys|wasm_profile|wasm_fuel|wasm_fuel_scanner|wasm_bytes)\.ts$/,
  /^guests\/(?!images\/index\.ts$)/,
];

/** Does `text` parse as exactly one function expression? */
function isOneFunction(text: string): boolean {
  try {
    // Parsed, never called: a syntax error means the block was cut wrong.
    new Function(`return (${text}\n);`);
    return true;
  } catch {
    return false;
  }
}

/** The bundle `text` with its warm functions marked for eager compilation. */
export function eagerFunctions(text: string): { text: string; functions: number; modules: number } {
  const lines = text.split("\n");
  const hoisted: string[] = [];
  const out: string[] = [];
  let module = "";
  let functions = 0, modules = 0;
  const cold = () => COLD_MODULES.some((re) => re.test(module));
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const header = /^\/\/ (\S+\.[jt]s)$/.exec(line);
    if (header) module = header[1];
    const fn = /^(async )?function(\*?) ([\w$]+)\(/.exec(line);
    const esm = /^ {2}("[^"\\]+")\(\) \{$/.exec(line);
    if ((fn || (esm && out.at(-1)?.endsWith("= __esm({"))) && !cold()) {
      const close = fn ? "}" : "  }";
      let end = i;
      while (end < lines.length && lines[end] !== close) end++;
      const block = lines.slice(i, end + 1);
      if (fn && end < lines.length && line.endsWith("{")) {
        const [, async_ = "", star, name] = fn;
        const expr = `${async_}function${star} ${name}${line.slice(fn[0].length - 1)}`;
        const body = [expr, ...block.slice(1)].join("\n");
        if (isOneFunction(body)) {
          hoisted.push(`var ${name} = (${body});`);
          functions++;
          i = end;
          continue;
        }
      } else if (esm && end < lines.length) {
        const body = ["function() {", ...block.slice(1)].join("\n");
        if (isOneFunction(body)) {
          out.push(`  ${esm[1]}: (${body})`);
          modules++;
          i = end;
          continue;
        }
      }
    }
    out.push(line);
  }
  // Before everything but a `#!` line, which must stay first.
  const head = out[0]?.startsWith("#!") ? out.splice(0, 1) : [];
  return { text: [...head, ...hoisted, ...out].join("\n"), functions, modules };
}

if (import.meta.main) {
  const [file] = Deno.args;
  if (file === undefined || Deno.args.length !== 1) {
    console.error("usage: tools/eager.ts FILE");
    Deno.exit(125);
  }
  const { text, functions, modules } = eagerFunctions(await Deno.readTextFile(file));
  await Deno.writeTextFile(file, text);
  console.error(`eager: ${functions} function(s), ${modules} module bod(ies) marked`);
}
