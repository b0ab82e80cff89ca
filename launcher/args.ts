/**
 * A small command-line parser (we avoid `node:util`: loading Deno's Node
 * layer costs ~20 ms at start-up). GNU style: `--name value`,
 * `--name=value`, `-n value`, boolean flags, repeatable options, options
 * anywhere before `--`, everything after `--` positional.
 *
 * @module
 */

import { UsageError } from "../devices/registry.ts";

/** How one option is spelled and what it takes. */
export interface OptionSpec {
  type: "string" | "boolean";
  short?: string;
  multiple?: boolean;
}

/** Parsed values: string, string[] (multiple; a repeatable flag gives one "" per use), or true. */
export type Values = Record<string, string | string[] | boolean | undefined>;

/** Parse `argv` against `options`; one-line UsageErrors on mistakes. */
export function parseOptions(
  argv: string[],
  options: Record<string, OptionSpec>,
): { values: Values; positionals: string[] } {
  const values: Values = {};
  const positionals: string[] = [];
  const byShort = new Map(
    Object.entries(options).filter(([, o]) => o.short).map(([n, o]) => [o.short!, n]),
  );
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("-") || arg === "-") {
      positionals.push(arg);
      continue;
    }
    let name: string | undefined;
    let inline: string | undefined;
    let shown = arg;
    // After GUEST, an unknown option was most likely meant for the guest.
    const forGuest = positionals.length > 0
      ? `; for the guest, put -- before its arguments: lguest run ${positionals[0]} -- ${arg} ...`
      : "";
    if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      shown = `--${name}`;
      if (!(name in options)) {
        throw new UsageError(`unknown option ${shown} (see 'lguest --help'${forGuest})`);
      }
    } else {
      name = byShort.get(arg.slice(1, 2));
      if (name === undefined || (arg.length > 2 && options[name].type === "boolean")) {
        throw new UsageError(`unknown option ${arg} (see 'lguest --help'${forGuest})`);
      }
      shown = arg.slice(0, 2);
      if (arg.length > 2) inline = arg.slice(2);
    }
    const spec = options[name];
    if (spec.type === "boolean") {
      if (inline !== undefined) throw new UsageError(`option ${shown} takes no value`);
      // A repeatable flag counts: one "" per use (a device flag, one device each).
      if (spec.multiple) ((values[name] ??= []) as string[]).push("");
      else values[name] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`option ${shown} needs a value`);
      if (next.startsWith("-") && next !== "-") {
        throw new UsageError(
          `option ${shown} needs a value (write --${name}=VALUE for one starting with '-')`,
        );
      }
      value = next;
      i++;
    }
    if (spec.multiple) ((values[name] ??= []) as string[]).push(value);
    else values[name] = value;
  }
  return { values, positionals };
}
