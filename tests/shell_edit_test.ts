/**
 * The shell's line editing (guests/shell.c read_line): arrows left/right,
 * backspace and Delete anywhere in the line, Home/End, history up/down.
 * The keys arrive as the bytes a terminal sends (ESC [ D ...), here piped;
 * tests/pty_test.ts types some at a real pseudo-terminal.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describe, lines, runCli } from "./helpers/run_cli.ts";
import { EXIT } from "../launcher/exit.ts";

const LEFT = "\x1b[D", RIGHT = "\x1b[C", UP = "\x1b[A", DOWN = "\x1b[B";
const HOME = "\x1b[H", END = "\x1bOF", DEL = "\x1b[3~", BS = "\x7f";

/** The shell's output lines that are not prompts, for this input. */
async function outputOf(input: string): Promise<string[]> {
  const r = await runCli(["run", "shell"], { stdin: input });
  assert.equal(r.code, EXIT.OK, describe(r));
  return lines(r.stdout).filter((l) => !l.startsWith("lguest"));
}

Deno.test("shell editing: insert in the middle, backspace and Delete anywhere", async () => {
  const out = await outputOf(
    `echo wrld${LEFT.repeat(3)}o\n` + // insert before "rld"
      `echo hello xworld${LEFT.repeat(5)}${BS}\n` + // backspace in the middle
      `echo abXcd${LEFT.repeat(3)}${DEL}\n` + // Delete under the cursor
      `cho end${HOME}e${END}s\n` + // Home, End
      `echo ab${LEFT}${LEFT}${LEFT}${RIGHT}${RIGHT}${RIGHT}${RIGHT}c\n`, // bounded moves
  );
  assert.deepEqual(out, ["world", "hello world", "abcd", "ends", "abc"]);
});

Deno.test("shell editing: history with up and down", async () => {
  const out = await outputOf(
    "echo one\necho two\n" +
      `${UP}\n` + // the last line again
      `${UP}${UP}${UP}\n` + // two back ("echo two" was not stored twice), no further
      `echo new${UP}${DOWN}\n` + // down past the newest gives the line being typed back
      `${UP}${UP}${DOWN}${BS}${BS}${BS}six\n`, // edit a recalled line
  );
  assert.deepEqual(out, ["one", "two", "two", "one", "new", "six"]);
});

Deno.test("shell editing: unknown escape sequences and control keys are ignored", async () => {
  const out = await outputOf(`echo a\x1b[5~\x1b[99Zb\x1bxc\x07d\n`);
  assert.deepEqual(out, ["abcd"]);
});

Deno.test("shell editing: Ctrl-D deletes under the cursor, and ends the shell on an empty line", async () => {
  const r = await runCli(["run", "shell"], {
    stdin: `echo abXc${LEFT}${LEFT}\x04\n\x04echo never\n`,
  });
  assert.equal(r.code, EXIT.OK, describe(r));
  const out = lines(r.stdout).filter((l) => !l.startsWith("lguest"));
  assert.deepEqual(out.filter((l) => l !== ""), ["abc"], describe(r));
});
