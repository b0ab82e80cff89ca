/*
 * @guest: Prints a greeting with the memory size, then powers off.
 *
 * The smallest useful guest: the kit has already booted, scanned the bus
 * and probed the console by the time main() runs.
 */
#include "kit.h"

int main(void)
{
	printf("Hello from an lguest guest! I have %u MiB of RAM.\n", lg_mem >> 20);
	if (lg_cmdline[0])
		printf("My command line: %s\n", lg_cmdline);
	power_off();
}
