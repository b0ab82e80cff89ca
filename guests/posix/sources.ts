/**
 * Pinned upstream sources of the built-in POSIX guests (`lua`, `sqlite3`),
 * fetched at build time from the registries this project can reach and
 * checked against their SHA-256: nothing of them is kept in git.
 *
 * - SQLite amalgamation 3.53.2 (`sqlite3.c`, `sqlite3.h`): the npm package
 *   `better-sqlite3@12.11.1`, `deps/sqlite3/` (`npm pack`).
 * - SQLite's command-line shell (`src/shell.c.in` and the files it
 *   includes, 3.40.1): Debian's source package `sqlite3` (orig tarball).
 * - Lua 5.4.4: Debian's source package `lua5.4` (orig tarball, unchanged
 *   upstream).
 *
 * Debian source packages come through `apt-get source --download-only`,
 * which needs a `deb-src` line (.ci/run adds one; the error message says
 * how). Downloads are cached in `$LGUEST_SOURCES_CACHE` or
 * `~/.cache/lguest/sources`.
 *
 * @module
 */

/** One pinned source archive. */
export interface PinnedSource {
  /** What it is, for messages. */
  what: string;
  /** The archive's file name. */
  file: string;
  sha256: string;
  /** How to get it: `npm pack SPEC` or `apt-get source PKG=VERSION`. */
  npm?: string;
  apt?: string;
}

export const SQLITE_AMALGAMATION: PinnedSource = {
  what: "SQLite 3.53.2 amalgamation (npm better-sqlite3@12.11.1, deps/sqlite3)",
  file: "better-sqlite3-12.11.1.tgz",
  sha256: "ebf0ed75a7a59dbcb3b24bbd014ef49d9f15bc328e4adcbf516f2a8fadfa2835",
  npm: "better-sqlite3@12.11.1",
};

export const SQLITE_SHELL: PinnedSource = {
  what: "SQLite 3.40.1 sources, for the shell (Debian source package sqlite3)",
  file: "sqlite3_3.40.1.orig.tar.xz",
  sha256: "aaa776260ab4dc976db34aa7891819484c8676b5b2783123ebc6301e2ca5d655",
  apt: "sqlite3=3.40.1-2+deb12u2",
};

export const LUA: PinnedSource = {
  what: "Lua 5.4.4 (Debian source package lua5.4)",
  file: "lua5.4_5.4.4.orig.tar.gz",
  sha256: "164c7849653b80ae67bec4b7473b884bf5cc8d2dca05653475ec2ed27b9ebf61",
  apt: "lua5.4=5.4.4-3+deb12u1",
};

/** A problem fetching sources: one line for the user. */
export class SourceError extends Error {}

function cacheDir(): string {
  const env = Deno.env.get("LGUEST_SOURCES_CACHE");
  if (env) return env;
  const home = Deno.env.get("HOME") ?? "/tmp";
  return `${Deno.env.get("XDG_CACHE_HOME") ?? `${home}/.cache`}/lguest/sources`;
}

async function sha256(path: string): Promise<string> {
  const data = await Deno.readFile(path);
  const digest = await crypto.subtle.digest("SHA-256", data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function exec(cmd: string, args: string[], cwd: string): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, cwd, stdout: "piped", stderr: "piped" })
      .output();
    const text = new TextDecoder().decode(out.stderr).trim();
    if (!out.success) return text.split("\n").slice(-2).join(" ") || `exit ${out.code}`;
    return "";
  } catch (e) {
    return e instanceof Deno.errors.NotFound ? `${cmd} is not installed` : String(e);
  }
}

/** The path of a pinned archive in the cache, fetched and checked if needed. */
export async function fetchSource(src: PinnedSource): Promise<string> {
  const dir = cacheDir();
  await Deno.mkdir(dir, { recursive: true });
  const path = `${dir}/${src.file}`;
  try {
    if (await sha256(path) === src.sha256) return path;
    await Deno.remove(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const tmp = await Deno.makeTempDir({ dir, prefix: ".fetch-" });
  try {
    const err = src.npm
      ? await exec("npm", ["pack", "--silent", src.npm], tmp)
      : await exec("apt-get", ["source", "--download-only", "-qq", src.apt!], tmp);
    const got = `${tmp}/${src.file}`;
    let sum = "";
    try {
      sum = await sha256(got);
    } catch {
      const hint = src.apt
        ? " (needs a deb-src line for bookworm in /etc/apt/sources.list.d and apt-get update)"
        : "";
      throw new SourceError(`cannot fetch ${src.what}: ${err || "no file"}${hint}`);
    }
    if (sum !== src.sha256) {
      throw new SourceError(`${src.file}: sha256 ${sum}, expected ${src.sha256}`);
    }
    await Deno.rename(got, path);
    return path;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Extract `members` of a tarball into `dest` (tar picks the compression). */
export async function extract(archive: string, dest: string, members: string[]): Promise<void> {
  await Deno.mkdir(dest, { recursive: true });
  const err = await exec("tar", ["xf", archive, "-C", dest, ...members], dest);
  if (err) throw new SourceError(`tar xf ${archive}: ${err}`);
}

/**
 * SQLite's tool/mkshellc.tcl in TypeScript: shell.c.in with every
 * `INCLUDE file` line replaced by that file (paths relative to src/), a
 * repeated `typedef ... NAME;` commented out, `#include "sqlite…` and
 * `test_windirent.h` includes commented out inside included files, and
 * `__declspec(dllexport)` dropped.
 */
export async function mkshellc(srcDir: string): Promise<string> {
  const seen = new Set<string>();
  const omitTypedef = (line: string): string => {
    const m = /^typedef .*\b([a-zA-Z0-9_]+);/.exec(line);
    if (!m) return line;
    if (seen.has(m[1])) return `/* ${line.replaceAll("/*", "//").replaceAll("*/", "//")} */`;
    seen.add(m[1]);
    return line;
  };
  const lines = (text: string) => {
    const l = text.split("\n");
    if (l.at(-1) === "") l.pop();
    return l;
  };
  const out: string[] = [
    "/* shell.c generated from src/shell.c.in by guests/posix/sources.ts (mkshellc) */",
  ];
  for (const raw of lines(await Deno.readTextFile(`${srcDir}/shell.c.in`))) {
    const line = omitTypedef(raw);
    if (!/^INCLUDE /.test(line)) {
      out.push(line);
      continue;
    }
    const file = line.split(/\s+/)[1];
    out.push(`/************************* Begin ${file} ******************/`);
    for (const raw2 of lines(await Deno.readTextFile(`${srcDir}/${file}`))) {
      let l = omitTypedef(raw2);
      if (/^#include "sqlite/.test(l) || /^# *include "test_windirent.h"/.test(l)) l = `/* ${l} */`;
      out.push(l.replaceAll("__declspec(dllexport)", ""));
    }
    out.push(`/************************* End ${file} ********************/`);
  }
  return out.join("\n") + "\n";
}
