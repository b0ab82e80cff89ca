/**
 * Test helper: the engines the end-to-end suite runs on, from one list.
 *
 * Every case of `tests/engines_e2e_test.ts` is written once and registered
 * per engine ({@link engineTest}); an engine this machine cannot run (no
 * /dev/kvm, no permission, not x86-64) is skipped with the reason printed
 * once, and `.ci/run` reports whether the KVM cases ran.
 *
 * @module
 */

import { ENGINE_NAMES, type EngineName } from "../../engines/select.ts";
import { kvmUnavailable } from "../../engines/kvm.ts";

/** One engine as the tests see it. */
export interface EngineCase {
  name: EngineName;
  /** CLI words selecting it (`--engine NAME`). */
  args: string[];
  /** Why it cannot run here, or null. */
  skip: string | null;
}

/** Every engine, default first. */
export const ENGINES: readonly EngineCase[] = ENGINE_NAMES.map((name) => ({
  name,
  args: ["--engine", name],
  skip: name === "kvm" ? kvmUnavailable() : null,
}));

const told = new Set<string>();

/**
 * Register `fn` as one test per engine, named `[engine] name`; an engine
 * that cannot run here is registered as ignored, and its reason printed.
 */
export function engineTest(
  name: string,
  fn: (e: EngineCase) => Promise<void>,
  opts: { only?: EngineName[]; sanitize?: boolean } = {},
): void {
  for (const e of ENGINES) {
    if (opts.only && !opts.only.includes(e.name)) continue;
    if (e.skip !== null && !told.has(e.name)) {
      told.add(e.name);
      console.log(`engines: skipping the ${e.name} cases: ${e.skip}`);
    }
    Deno.test({
      name: `[${e.name}] ${name}`,
      ignore: e.skip !== null,
      fn: () => fn(e),
      ...(opts.sanitize === false
        ? { sanitizeOps: false, sanitizeResources: false, sanitizeExit: false }
        : {}),
    });
  }
}
