/**
 * Whether `lguest cc` can build here (clang, wasm-ld and wasi-libc), for
 * the tests that build a user's program: they skip, saying why, without it.
 *
 * @module
 */

const INSTALL = "apt-get install clang lld wasi-libc libclang-rt-14-dev-wasm32";

/** What is missing to build a wasi-libc program, or null. */
export async function haveToolchain(): Promise<string | null> {
  for (const [cmd, args] of [["clang", ["--version"]], ["wasm-ld", ["--version"]]] as const) {
    try {
      await new Deno.Command(cmd, { args: [...args], stdout: "null", stderr: "null" }).output();
    } catch {
      return `${cmd} is not installed`;
    }
  }
  try {
    await Deno.stat("/usr/lib/wasm32-wasi/libc.a");
  } catch {
    return "wasi-libc is not installed";
  }
  return null;
}

/** True (having printed why, prefixed by `what`) when the toolchain is missing. */
export async function skipWithoutToolchain(what = "skipped"): Promise<boolean> {
  const why = await haveToolchain();
  if (why !== null) console.log(`${what}: ${why} (${INSTALL})`);
  return why !== null;
}
