/**
 * Typed access to WebAssembly JSPI (`Suspending`, `promising`), which this
 * Deno's V8 has on by default but TypeScript's lib does not declare yet.
 *
 * @module
 */

interface JspiNamespace {
  Suspending: new (fn: (...args: never[]) => unknown) => WebAssembly.ImportValue;
  promising: (fn: (...args: never[]) => unknown) => (...args: unknown[]) => Promise<unknown>;
}

const jspi = WebAssembly as unknown as Partial<JspiNamespace>;

/** Is JSPI available in this runtime? */
export const hasJspi: boolean = typeof jspi.Suspending === "function" &&
  typeof jspi.promising === "function";

/**
 * Wrap a host function as a suspending wasm import. The wasm caller's stack
 * is suspended until the returned value settles; in this V8 (as the JSPI
 * spec has said since 2025) a non-promise value is passed through
 * `Promise.resolve` first, so a call always suspends, if only for a
 * microtask.
 */
export function suspending(fn: () => Promise<void> | undefined): WebAssembly.ImportValue {
  if (!jspi.Suspending) throw new Error("wasm: this runtime has no WebAssembly JSPI");
  return new jspi.Suspending(fn);
}

/** Wrap a wasm export so calling it returns a promise (and may suspend). */
export function promising(fn: () => unknown): () => Promise<unknown> {
  if (!jspi.promising) throw new Error("wasm: this runtime has no WebAssembly JSPI");
  return jspi.promising(fn);
}
