/*
 * @guest: Test: prints its command line split into words (cmdline_split), one [word] a line (bytes below 0x20 and backslash as \\xNN).
 */
#include "kit.h"

int main(void)
{
	static char buf[LG_COMMAND_LINE_SIZE];
	static char *argv[LG_COMMAND_LINE_SIZE / 2 + 1];
	int argc = cmdline_split(lg_cmdline, buf, sizeof(buf), argv, ARRAY_SIZE(argv));

	printf("argc=%d\n", argc);
	for (int i = 0; i < argc; i++) {
		console_write("[", 1);
		for (const char *p = argv[i]; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == '\\')
				printf("\\x%02x", (unsigned char)*p);
			else
				console_write(p, 1);
		}
		console_write("]\n", 2);
	}
	return 0;
}
