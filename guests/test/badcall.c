/*
 * @guest: Test: makes the unassigned hypercall 11 ("Bad hypercall 11").
 */
#include "kit.h"

int main(void)
{
	printf("badcall: making hypercall 11\n");
	hcall(11, 0, 0, 0);
	panic("badcall: hypercall 11 returned");
}
