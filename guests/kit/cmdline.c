/*
 * cmdline.c: split the command line back into the user's words.
 *
 * The Launcher writes each word as is when it is non-empty and holds no
 * space, tab, newline, `"`, `'` or `\`; any other word goes in double
 * quotes with `"` and `\` escaped as `\"` and `\\`. Words are separated by
 * one space, with no space after the last (docs/guest-abi.md §3).
 *
 * The parser takes a little more, for command lines written by hand (a
 * config file's "args"): any run of spaces, tabs and newlines separates
 * words; a quoted part may sit inside a word (`a"b c"d` is `ab cd`); `""`
 * is an empty word; outside quotes `\` is an ordinary byte; inside them it
 * escapes only `"` and `\`; a quote left open runs to the end of the line.
 */
#include "kit.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n';
}

int cmdline_split(const char *line, char *buf, size_t bufsz, char **argv, int max)
{
	size_t out = 0;
	int argc = 0;

	if (!line)
		line = "";
	for (;;) {
		while (is_space(*line))
			line++;
		if (!*line)
			break;
		if (argc >= max || out >= bufsz)
			return -1;
		argv[argc++] = &buf[out];
		bool quoted = false;
		while (*line && (quoted || !is_space(*line))) {
			char c = *line++;

			if (c == '"') {
				quoted = !quoted;
				continue;
			}
			if (quoted && c == '\\' && (*line == '"' || *line == '\\'))
				c = *line++;
			if (out + 1 >= bufsz)       /* keep room for the NUL */
				return -1;
			buf[out++] = c;
		}
		buf[out++] = '\0';
	}
	if (argc < max)
		argv[argc] = NULL;
	return argc;
}
