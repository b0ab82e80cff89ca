/**
 * Registers every device kind with the registry (the console is built in:
 * every guest has exactly one, last in its table).
 *
 * @module
 */

import "./block.ts";
import "./net/net.ts";
