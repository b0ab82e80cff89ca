/**
 * `lguest`: run lguest guests on Deno.
 *
 * This entry stays tiny so that `lguest --version` starts as fast as Deno
 * can; everything else loads on demand.
 *
 * @module
 */

import { VERSION } from "./version.ts";

if (import.meta.main) {
  const args = Deno.args;
  if (args.length === 1 && (args[0] === "--version" || args[0] === "-V")) {
    console.log(`lguest ${VERSION}`);
  } else {
    if (args[0] === "run") (await import("./launcher/supervisor.ts")).prestartWatchdog();
    const { main } = await import("./launcher/cli.ts");
    Deno.exit(await main(args));
  }
}
