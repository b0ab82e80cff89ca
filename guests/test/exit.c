/*
 * @guest: Test: ends with the exit status on its command line ("N": lg_exit(N); "main N": main returns N).
 */
#include "kit.h"

int main(void)
{
	const char *s = lg_cmdline;

	if (strncmp(s, "main ", 5) == 0)
		return atoi(s + 5);
	lg_exit(atoi(s));
}
