/**
 * The entry of `deno task bundle` and `deno task compile`: the CLI
 * (`main.ts`) with every built-in image a shipped program needs. A
 * checkout leaves the big images (lua and sqlite3, ~0.9 MB of module
 * text), the x86-64 images and libposix.a out of its start-up graph, since
 * Deno reads every module of that graph before the first statement runs
 * (boot.first_byte); `guests/images/embedded.ts` imports them with static
 * specifiers, so that the bundle and the binary carry them and work
 * offline from an empty folder.
 *
 * @module
 */

import "../guests/images/embedded.ts";
import { start } from "../main.ts";

if (import.meta.main) await start(Deno.args);
