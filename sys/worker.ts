/**
 * Workers from the module graph: a Worker's code is a function of the
 * module that starts it, handed to the Worker as source text in a `data:`
 * URL. Nothing is read beside the module, so a Worker starts the same way
 * whether the program runs from a checkout, an HTTP URL, a bundle or a
 * compiled binary, and the user needs no extra flag (issue 11).
 *
 * The function must be self-contained: it may use globals (`Deno`, `self`,
 * `Atomics`...) and its own locals, never an import or a name of its
 * module, since only its text travels. Constants go in the first message.
 *
 * @module
 */

/** Start a module Worker that runs `body()` (self-contained, see above). */
export function functionWorker(body: () => void, name: string): Worker {
  const source = `(${body.toString()})();\n`;
  const url = "data:text/javascript;base64," + new TextEncoder().encode(source).toBase64();
  return new Worker(url, { type: "module", name });
}
