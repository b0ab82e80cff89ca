// The boot.first_byte reference: a Deno program that prints one byte and
// exits, started exactly as `lguest run` is (same flags). Nothing of ours
// is imported, so our code cannot slow it down.
Deno.stdout.writeSync(new Uint8Array([0x0a]));
