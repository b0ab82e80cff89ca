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

// deno-fmt-ignore
/**
 * The look module (70 bytes, wat2wasm of):
 *
 * ```wat
 * (module
 *   (type $v (func))
 *   (import "h" "look" (func $look (result i32)))
 *   (table $t (export "t") 1 funcref)
 *   (func (export "wait")
 *     (if (call $look) (then (call_indirect (type $v) (i32.const 0))))))
 * ```
 */
const LOOK_WASM = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x60, 0x00, 0x00, 0x60, 0x00,
  0x01, 0x7f, 0x02, 0x0a, 0x01, 0x01, 0x68, 0x04, 0x6c, 0x6f, 0x6f, 0x6b, 0x00, 0x01, 0x03, 0x02,
  0x01, 0x00, 0x04, 0x04, 0x01, 0x70, 0x00, 0x01, 0x07, 0x0c, 0x02, 0x01, 0x74, 0x01, 0x00, 0x04,
  0x77, 0x61, 0x69, 0x74, 0x00, 0x01, 0x0a, 0x0e, 0x01, 0x0c, 0x00, 0x10, 0x00, 0x04, 0x40, 0x41,
  0x00, 0x11, 0x00, 0x00, 0x0b, 0x0b,
];

// deno-fmt-ignore
/**
 * The park module (48 bytes, wat2wasm of):
 *
 * ```wat
 * (module
 *   (import "h" "park" (func $park))
 *   (func (export "park") (call $park)))
 * ```
 */
const PARK_WASM = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x04, 0x01, 0x60, 0x00, 0x00, 0x02, 0x0a,
  0x01, 0x01, 0x68, 0x04, 0x70, 0x61, 0x72, 0x6b, 0x00, 0x00, 0x03, 0x02, 0x01, 0x00, 0x07, 0x08,
  0x01, 0x04, 0x70, 0x61, 0x72, 0x6b, 0x00, 0x01, 0x0a, 0x06, 0x01, 0x04, 0x00, 0x10, 0x00, 0x0b,
];

/** Compiled at first use, once per process. */
let lookModule: WebAssembly.Module | undefined;
let parkModule: WebAssembly.Module | undefined;

/**
 * A wasm function `() -> ()` to give a guest as an import, that calls `fn`
 * and suspends the wasm caller's stack until the promise `fn` returns
 * settles, or, when `fn` returns undefined, returns at once without
 * suspending (no microtask: unlike {@link suspending}).
 *
 * It costs nothing of JSPI until the first promise: V8 compiles a
 * `Suspending` import's wrapper (one TurboFan compile, ~0.5 ms the first
 * time in a process) when the module importing it is instantiated, so a
 * guest that imported one paid it before its first instruction. Here the
 * guest imports `wait` of a small look module whose own import is a plain
 * JavaScript function (V8's generic wrapper, nothing compiled):
 * `wait` calls it and, when it says so, calls through slot 0 of its table.
 * That slot is filled at the first promise, before the look returns, with
 * the export of a park module whose import is the `Suspending` one:
 * instantiating it is what compiles the wrapper. Between `promising` and
 * the suspension there are only wasm frames (the guest's, `wait`, `park`),
 * so the whole guest stack suspends as with a direct import. The guest sees
 * neither module's table nor import: it is given the one function.
 */
export function lazySuspending(fn: () => Promise<void> | undefined): WebAssembly.ExportValue {
  if (!jspi.Suspending) throw new Error("wasm: this runtime has no WebAssembly JSPI");
  const Suspending = jspi.Suspending;
  let parked: Promise<void> | undefined;
  const look = (): number => {
    const p = fn();
    if (p === undefined) return 0;
    parked = p;
    if (table.get(0) === null) {
      const park = new WebAssembly.Instance(
        parkModule ??= new WebAssembly.Module(new Uint8Array(PARK_WASM)),
        {
          h: {
            park: new Suspending((): Promise<void> => {
              const q = parked!;
              parked = undefined;
              return q;
            }),
          },
        },
      );
      table.set(0, park.exports.park as () => void);
    }
    return 1;
  };
  const inst = new WebAssembly.Instance(
    lookModule ??= new WebAssembly.Module(new Uint8Array(LOOK_WASM)),
    { h: { look } },
  );
  const table = inst.exports.t as WebAssembly.Table;
  return inst.exports.wait;
}
