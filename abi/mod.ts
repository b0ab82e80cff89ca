/**
 * The lguest ABI: constants, i386 layouts and typed accessors.
 *
 * @module
 */
export * from "./constants.ts";
export * from "./layout.ts";
export * from "./structs.ts";
