# posix/memset.s: memset as memory.fill; why assembly and not C:
# posix/memcpy.s.

	.text

	.globl	memset
	.type	memset,@function
memset:
	.functype	memset (i32, i32, i32) -> (i32)
	local.get	0
	local.get	1
	local.get	2
	memory.fill	0
	local.get	0
	end_function
