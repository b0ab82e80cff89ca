/*
 * @guest: Test: stores to 0xFFFFFFF0, far outside guest memory (a wasm trap).
 */
#include "kit.h"

int main(void)
{
	printf("badmem: writing to 0xfffffff0\n");
	*(volatile u32 *)lg_va(0xFFFFFFF0u) = 0xdeadbeef;
	panic("badmem: the store did not fault");
}
