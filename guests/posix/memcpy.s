# posix/memcpy.s (and memmove.s, memset.s): memcpy, memmove and memset for
# wasi-libc programs as the bulk memory instructions (memory.copy,
# memory.fill), which V8 runs as one native copy or fill; wasi-libc's
# (Debian's build is without bulk memory) are C loops, 1.5-12 times slower
# (docs/performance.md, "Real programs").
# libposix.a comes before -lc on the link line, so these are the ones used.
#
# Assembly, not C with -mbulk-memory: a C object would declare bulk-memory in
# its target_features section, and wasm-ld 14, seeing it with an imported
# memory, zero-fills .bss with memory.fill in a start function, which the
# guest-image profile refuses. An assembled object declares no features;
# guest RAM starts zeroed, so .bss needs no fill. The fuel instrumentation
# makes each memory.copy/fill pay for its length (docs/security.md).
# memory.copy is memmove (overlap allowed); both trap out of bounds, as the
# loops would at the first byte outside memory.

# One function a file: each is its own member of libposix.a, so a program
# that defines one of them itself still gets the others (one object
# defining all three would clash with its own).

	.text

	.globl	memcpy
	.type	memcpy,@function
memcpy:
	.functype	memcpy (i32, i32, i32) -> (i32)
	local.get	0
	local.get	1
	local.get	2
	memory.copy	0, 0
	local.get	0
	end_function
