/*
 * @guest: Interactive line shell (help, echo, devices, mem, uptime, poweroff).
 *
 * Reads the console a byte at a time, echoes, and edits the line (backspace
 * 0x7f/0x08, Ctrl-C drops the line, Ctrl-U clears it). "\r", "\n" and
 * "\r\n" all count as one Enter, so it works both from a raw terminal and
 * with piped input. At EOF the host simply stops sending: we wait.
 *
 * Adding a command: write `static int cmd_foo(int argc, char **argv)` and
 * add a line to commands[].
 */
#include "kit.h"

#define PROMPT "lguest$ "
#define LINE_MAX 256
#define ARGS_MAX 32

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);
};

/* ---- Commands ------------------------------------------------------------ */

static int cmd_help(int argc, char **argv);

static int cmd_echo(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		printf("%s%s", i > 1 ? " " : "", argv[i]);
	printf("\n");
	return 0;
}

static int cmd_devices(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("idx type     features status irq pfn      driver\n");
	for (unsigned i = 0; i < LGUEST_MAX_DEVICES; i++) {
		struct lg_device *dev = bus_device(i);

		if (!dev)
			continue;
		printf("%3u %-8s 0x%04x   0x%04x %3u 0x%06x %s\n", i,
		       bus_type_name(dev->desc->type), dev->desc->features,
		       dev->desc->status, dev->irq, dev->desc->pfn,
		       dev->driver ? dev->driver->name : "-");
	}
	return 0;
}

static int cmd_mem(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("RAM:     %u KiB [0x00000000, 0x%08x)\n", lg_mem >> 10, lg_mem);
	printf("image:   [0x%08lx, 0x%08lx)\n", (unsigned long)arch_image_start(),
	       (unsigned long)arch_heap_start());
	printf("heap:    [0x%08lx, 0x%08lx) used %zu KiB, free %zu KiB\n",
	       (unsigned long)heap_start(), (unsigned long)heap_end(),
	       heap_used() >> 10, heap_free() >> 10);
	printf("devices: descriptor page 0x%08x\n", bus_desc_addr());
	for (unsigned i = 0; i < LGUEST_MAX_DEVICES; i++) {
		struct lg_device *dev = bus_device(i);

		if (dev && dev->mem)
			printf("  %u %-8s page(s) [0x%08x, 0x%08x)\n", i,
			       bus_type_name(dev->desc->type), lg_pa(dev->mem),
			       lg_pa(dev->mem) + dev->desc->num_pages * LGUEST_PAGE_SIZE);
	}
	return 0;
}

static int cmd_uptime(int argc, char **argv)
{
	u32 sec, nsec;

	(void)argc;
	(void)argv;
	uptime(&sec, &nsec);
	printf("up %u.%03u s\n", sec, nsec / 1000000);
	return 0;
}

static int cmd_poweroff(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("Powering off.\n");
	power_off();
}

static const struct command commands[] = {
	{ "help",     "",        "list the commands",                  cmd_help },
	{ "echo",     "ARGS...", "print the arguments",                cmd_echo },
	{ "devices",  "",        "list the devices on the lguest bus", cmd_devices },
	{ "mem",      "",        "show the memory layout",             cmd_mem },
	{ "uptime",   "",        "time since boot",                    cmd_uptime },
	{ "poweroff", "",        "power the guest off",                cmd_poweroff },
};

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	for (unsigned i = 0; i < ARRAY_SIZE(commands); i++) {
		char usage[40];

		snprintf(usage, sizeof(usage), "%s %s", commands[i].name, commands[i].args);
		printf("  %-20s %s\n", usage, commands[i].help);
	}
	return 0;
}

static void run_line(char *line)
{
	char *argv[ARGS_MAX + 1], *save;
	int argc = 0;

	for (char *tok = strtok_r(line, " \t", &save); tok && argc < ARGS_MAX;
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (argc == 0)
		return;
	for (unsigned i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[0], commands[i].name) == 0) {
			commands[i].run(argc, argv);
			return;
		}
	printf("unknown command: %s (try help)\n", argv[0]);
}

/* ---- Line editing ---------------------------------------------------------- */

/* Echo is collected and sent in one DMA per burst of input. */
static char echo_buf[128];
static size_t echo_len;

static void echo_flush(void)
{
	console_write(echo_buf, echo_len);
	echo_len = 0;
}

static void echo(const char *s)
{
	while (*s) {
		if (echo_len == sizeof(echo_buf))
			echo_flush();
		echo_buf[echo_len++] = *s++;
	}
}

/* Read one line into buf (NUL-terminated, without the Enter). */
static void read_line(char *buf, size_t size)
{
	static bool after_cr;      /* swallow the '\n' of a "\r\n" */
	size_t len = 0;

	for (;;) {
		int c = console_trygetc();

		if (c < 0) {
			echo_flush();
			c = console_getc();
			if (c < 0)         /* no console input at all */
				power_off();
		}
		if (c == '\n' && after_cr) {
			after_cr = false;
			continue;
		}
		after_cr = (c == '\r');
		if (c == '\r' || c == '\n') {
			echo("\n");
			echo_flush();
			buf[len] = '\0';
			return;
		}
		if (c == 0x7f || c == 0x08) {          /* backspace */
			if (len) {
				len--;
				echo("\b \b");
			}
		} else if (c == 0x03) {                /* Ctrl-C: drop the line */
			echo("^C\n" PROMPT);
			len = 0;
		} else if (c == 0x15) {                /* Ctrl-U: erase the line */
			while (len) {
				len--;
				echo("\b \b");
			}
		} else if (isprint(c) || c == '\t') {
			if (len < size - 1) {
				char s[2] = { (char)c, '\0' };

				buf[len++] = (char)c;
				echo(s);
			}
		}
	}
}

int main(void)
{
	static char line[LINE_MAX];

	printf("lguest shell: %u MiB RAM. Type 'help' for commands.\n", lg_mem >> 20);
	for (;;) {
		printf(PROMPT);
		read_line(line, sizeof(line));
		run_line(line);
	}
}
