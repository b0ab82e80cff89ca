/*
 * arch/wasm32/entry.c: the exported entry point and the image bounds.
 *
 * The host imports nothing from us but start(): it calls it once, inside
 * WebAssembly.promising(), so wait() may suspend. start() never returns:
 * the guest ends with CRASH (power-off is CRASH "Power down") and the host
 * unwinds us by throwing.
 */
#include "kit.h"

extern char __global_base[];    /* wasm-ld: --global-base (image start) */
extern char __heap_base[];      /* wasm-ld: end of data + stack */

uintptr_t arch_heap_start(void)
{
	return (uintptr_t)__heap_base;
}

uintptr_t arch_image_start(void)
{
	return (uintptr_t)__global_base;
}

/* wasm-ld: runs every constructor (the kit's drivers register there). */
extern void __wasm_call_ctors(void);

__attribute__((export_name("start"))) void start(void)
{
	lg_read_cmdline();	/* before the constructors: see kit.h */
	__wasm_call_ctors();
	lguest_boot();
	panic("lguest_boot returned");   /* not reached */
}
