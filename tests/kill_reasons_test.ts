/**
 * docs/guest-abi.md §11 lists every reason a guest can be killed with: this
 * test reads every `.kill("...")` / `.kill(\`...\`)` in the host, engines,
 * Launcher and devices, and the engine's fault reasons, and fails if the
 * table lacks one (matched on the text before the first `${`).
 *
 * @module
 */

import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const DIRS = ["host", "engines", "launcher", "devices"];

async function sources(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of Deno.readDir(new URL(`${dir}/`, ROOT))) {
    if (e.isDirectory) out.push(...await sources(`${dir}/${e.name}`));
    else if (e.name.endsWith(".ts")) out.push(`${dir}/${e.name}`);
  }
  return out;
}

/** The literal start of a reason: up to the first `${`, trimmed of trailing punctuation. */
function prefix(literal: string): string {
  return literal.split("${")[0].replace(/[\s:(]+$/, "");
}

Deno.test("guest-abi §11: every kill reason in the code is in the table", async () => {
  const doc = await Deno.readTextFile(new URL("docs/guest-abi.md", ROOT));
  const section = doc.slice(doc.indexOf("## 11. How a guest dies"), doc.indexOf("## 12."));
  assert.ok(section.length > 100, "§11 not found");
  const reasons = new Map<string, string>();
  for (const dir of DIRS) {
    for (const file of await sources(dir)) {
      const text = await Deno.readTextFile(new URL(file, ROOT));
      for (const m of text.matchAll(/\.kill\(\s*(?:`([^`]*)`|"([^"]*)")/g)) {
        reasons.set(prefix(m[1] ?? m[2]), file);
      }
      // Reasons made elsewhere and passed on: the engine's fault reasons,
      // the memory checks the Launcher appends to its own.
      for (
        const m of text.matchAll(/return [`"]((?:guest fault|internal error|bad )[^`"]*)[`"]/g)
      ) {
        reasons.set(prefix(m[1]), file);
      }
    }
  }
  assert.ok(reasons.size >= 20, `only ${reasons.size} reasons found: the scan is broken`);
  const missing = [...reasons].filter(([p]) => p && !section.includes(p));
  assert.deepEqual(
    missing.map(([p, f]) => `${f}: ${p}`),
    [],
    "kill reasons missing from docs/guest-abi.md §11",
  );
});
