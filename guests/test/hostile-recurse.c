/*
 * @guest: Test: prints "recursing", then computes forever by recursion through a function pointer, without a loop or a hypercall.
 *
 * The call tree is binary and 60 deep: 2^60 calls, no stack overflow, no
 * backward branch anywhere (the function has no loop), so only a fuel
 * check at function entry can preempt it (docs/security.md "Preemption by
 * construction"). Built with the kit's own flags.
 */
#include "kit.h"

static u32 tree(u32 depth);
/* volatile: the compiler can neither inline the recursion nor turn it into a loop. */
static u32 (*volatile step)(u32) = tree;
static volatile u32 leaves;

static u32 tree(u32 depth)
{
	if (depth == 0) {
		leaves = leaves + 1;
		return 1;
	}
	return step(depth - 1) + step(depth - 1);
}

int main(void)
{
	printf("recursing\n");
	return (int)step(60);
}
