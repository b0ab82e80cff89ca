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

// `typeof`: a V8 without WebAssembly (DENO_V8_FLAGS=--jitless) has no such global, and this
// module loads with the CLI (launcher/cli.ts says so in one line).
const jspi = (typeof WebAssembly === "object" ? WebAssembly : {}) as Partial<JspiNamespace>;

/** Has this runtime WebAssembly at all (not so under V8's --jitless)? */
export const hasWasm: boolean = typeof WebAssembly === "object";

/** Why the wasm engine cannot run here (one line), when {@link hasWasm} is false. */
export const NO_WASM = "this Deno has no WebAssembly (V8 flag --jitless?)";

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
 * The look module (90 bytes, wat2wasm of):
 *
 * ```wat
 * (module
 *   (type $v (func))
 *   (import "h" "look" (func $look (result i32)))
 *   (table $t (export "t") 1 funcref)
 *   (global $s (export "s") (mut i32) (i32.const 0))
 *   (func (export "wait")
 *     (if (i32.eqz (global.get $s))
 *       (then (if (i32.eqz (call $look)) (then (return)))))
 *     (call_indirect (type $v) (i32.const 0))))
 * ```
 */
const LOOK_WASM = [
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x02, 0x60, 0x00, 0x00, 0x60, 0x00,
  0x01, 0x7f, 0x02, 0x0a, 0x01, 0x01, 0x68, 0x04, 0x6c, 0x6f, 0x6f, 0x6b, 0x00, 0x01, 0x03, 0x02,
  0x01, 0x00, 0x04, 0x04, 0x01, 0x70, 0x00, 0x01, 0x06, 0x06, 0x01, 0x7f, 0x01, 0x41, 0x00, 0x0b,
  0x07, 0x10, 0x03, 0x01, 0x74, 0x01, 0x00, 0x01, 0x73, 0x03, 0x00, 0x04, 0x77, 0x61, 0x69, 0x74,
  0x00, 0x01, 0x0a, 0x16, 0x01, 0x14, 0x00, 0x23, 0x00, 0x45, 0x04, 0x40, 0x10, 0x00, 0x45, 0x04,
  0x40, 0x0f, 0x0b, 0x0b, 0x41, 0x00, 0x11, 0x00, 0x00, 0x0b,
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
 * What a look decided when the guest must stop: the park itself, a function
 * that stops the guest (takes what it must, arms its resume) and returns the
 * promise the guest's stack stays suspended on. It is called only inside the
 * `Suspending` import, once the guest's stack holds every frame of the
 * suspension.
 */
export type Park = () => Promise<void>;

const handled = (): void => {};

/**
 * A wasm function `() -> ()` to give a guest as an import, that calls
 * `decide` and, when it returns a {@link Park}, suspends the wasm caller's
 * stack on the promise that park returns until it settles (a rejection is
 * thrown into the guest).
 *
 * It costs nothing of JSPI until the guest's first park: V8 compiles a
 * `Suspending` import's wrapper (one TurboFan compile, ~0.5 ms the first
 * time in a process) when the module importing it is instantiated, so a
 * guest that imported one paid it before its first instruction. Here the
 * guest imports `wait` of a small look module whose own import is a plain
 * JavaScript function (V8's generic wrapper, nothing compiled), the look:
 * `wait` calls it and, when it says so, calls through slot 0 of its table.
 * That slot is filled at the first park, before the look returns, with the
 * export of a park module whose import is the `Suspending` one:
 * instantiating it is what compiles the wrapper. Between `promising` and
 * the suspension there are only wasm frames (the guest's, `wait`, `park`),
 * so the whole guest stack suspends as with a direct import. The guest sees
 * neither module's table, global nor import: it is given the one function.
 *
 * Two rules, both found by attack on the first version:
 *
 * - The look only decides. It records the park that is due and returns;
 *   the park runs in the `Suspending` function, after `wait` pushed the
 *   park frame and the wrapper on the guest's stack. At the edge of that
 *   stack the push overflows (the guest dies of it: a trap nothing in wasm
 *   catches) and then nothing of the park has happened: no promise made
 *   that nobody will ever await. Each promise a park returns gets a handler
 *   at once besides JSPI's, so that even one JSPI never took (a suspension
 *   refused) cannot end the process as an unhandled rejection.
 * - From the first park on, `wait` calls the `Suspending` import at every
 *   call (the look module's global `s` set), which decides and parks
 *   there: as the direct `Suspending` import did before, every call
 *   suspends the guest's stack, if only for a microtask (V8 passes a
 *   non-promise result through `Promise.resolve`), and the microtasks
 *   queued meanwhile run in that gap. Other guests' stacks resume in
 *   microtasks too, so a guest that computes gives them a turn at each of
 *   its fuel looks, within its time slice; a device's chain of promise
 *   hops (a tap's frame to netd) depends on it. Before the first park a
 *   look that goes on is a plain call (no gap): at most the guest's first
 *   time slice, since a look at the end of a slice parks.
 */
export function lazySuspending(decide: () => Park | undefined): WebAssembly.ExportValue {
  if (!jspi.Suspending) throw new Error("wasm: this runtime has no WebAssembly JSPI");
  /** The park the plain look decided, for the Suspending function to make. */
  let due: Park | undefined;
  /** The Suspending function: the due park, or (from the first park on) the look's own decision. */
  const suspend = (): Promise<void> | undefined => {
    let park = due;
    due = undefined;
    park ??= decide();
    if (park === undefined) return undefined;
    const p = park();
    p.then(undefined, handled);
    return p;
  };
  const look = (): number => {
    const park = decide();
    if (park === undefined) return 0;
    due = park;
    if (table.get(0) === null) {
      const inst = new WebAssembly.Instance(
        parkModule ??= new WebAssembly.Module(new Uint8Array(PARK_WASM)),
        { h: { park: suspending(suspend) } },
      );
      table.set(0, inst.exports.park as () => void);
      switched.value = 1;
    }
    return 1;
  };
  const inst = new WebAssembly.Instance(
    lookModule ??= new WebAssembly.Module(new Uint8Array(LOOK_WASM)),
    { h: { look } },
  );
  const table = inst.exports.t as WebAssembly.Table;
  const switched = inst.exports.s as WebAssembly.Global;
  return inst.exports.wait;
}
