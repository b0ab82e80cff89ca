/*
 * @guest: Test: prints "spinning", then loops forever without hypercalls.
 */
#include "kit.h"

int main(void)
{
	volatile u32 n = 0;

	printf("spinning\n");
	for (;;)
		n++;
}
