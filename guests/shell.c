/*
 * @guest: Interactive line shell (help, echo, devices, mem, uptime, blk, net, ping, udp, poweroff); ip=A.B.C.D/N.
 *
 * Reads the console a byte at a time, echoes (not at a terminal in line
 * mode, which echoes itself), and edits the line: arrows
 * left/right, backspace anywhere, Delete, Home/End, history with up/down
 * (read_line() lists the keys). "\r", "\n" and "\r\n" all count as one
 * Enter, so it works both from a raw terminal and with piped input. At the
 * end of input (docs/guest-abi.md §10) it powers off.
 *
 * Adding a command: write `static int cmd_foo(int argc, char **argv)` and
 * add a line to commands[]. Entries with run == NULL are extra help lines
 * (the blk subcommands, dispatched by cmd_blk).
 *
 * blk (docs/guest-abi.md §15.2): `blk` lists the disks; `blk read DISK
 * SECTOR [COUNT]` hex-dumps, `blk write DISK SECTOR TEXT...` writes the rest
 * of the line zero-padded to whole sectors, `blk crc DISK` prints `crc32
 * <8 hex digits>` (zlib CRC-32 of the whole disk), `blk bench DISK` times a
 * sequential read in 64 KiB requests, `blk bench DISK write` a sequential
 * write of the whole disk (it overwrites the disk).
 */
#include "kit.h"

#define PROMPT "lguest$ "
#define LINE_MAX 256
#define ARGS_MAX 32

struct command {
	const char *name;
	const char *args;
	const char *help;
	int (*run)(int argc, char **argv);   /* NULL: a help line only */
};

/* The line being run: a copy from before tokenising (for "rest of the
 * line" arguments) and where the tokens live. */
static char raw_line[LINE_MAX];
static const char *token_base;

/* The rest of the command line from token argv[i] on, spaces kept. */
static const char *rest_of_line(char **argv, int i)
{
	return raw_line + (argv[i] - token_base);
}

/* Parse a whole decimal (or 0x hex) number; false if s is not one. */
static bool parse_u32(const char *s, u32 *out)
{
	char *end;
	unsigned long v;

	if (!isdigit(*s))
		return false;
	v = strtoul(s, &end, 0);
	if (*end || v > 0xFFFFFFFFul)
		return false;
	*out = (u32)v;
	return true;
}

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

/* ---- blk: the block devices ------------------------------------------------ */

#define BLK_DUMP_MAX 64                 /* sectors per "blk read" */

/* One 64 KiB page-aligned buffer for the blk commands: a 64 KiB request
 * into it is exactly 16 whole pages, one request, no copy. */
static u8 *blk_buffer(void)
{
	static u8 *buf;

	if (!buf && !(buf = alloc_pages(BLK_MAX_REQUEST / LGUEST_PAGE_SIZE)))
		printf("blk: out of memory\n");
	return buf;
}

/* DISK argument: a disk that exists and is ready, or -1 (message printed). */
static int blk_disk_arg(const char *s)
{
	u32 disk;
	struct lg_device *dev;

	if (!parse_u32(s, &disk)) {
		printf("blk: bad disk number '%s'\n", s);
		return -1;
	}
	dev = blk_device((int)disk);
	if (!dev) {
		printf("blk: no disk %u (%d disk(s); see 'blk')\n", disk, blk_count());
		return -1;
	}
	if (!(dev->desc->status & LGUEST_DEVICE_S_DRIVER_OK)) {
		printf("blk: disk %u is not ready (its probe failed)\n", disk);
		return -1;
	}
	return (int)disk;
}

/* Are sectors [sector, sector + count) on the disk? Prints if not. */
static bool blk_range_ok(int disk, u32 sector, u32 count)
{
	u32 n = blk_sectors(disk);

	if (sector < n && count <= n - sector)
		return true;
	if (count <= 1)
		printf("blk: sector %u out of range (disk %d has %u sectors)\n", sector, disk, n);
	else
		printf("blk: sectors %u..%u out of range (disk %d has %u sectors)\n", sector,
		       sector + count - 1, disk, n);
	return false;
}

static void blk_io_error(const char *what, int disk, u32 sector, int rc)
{
	printf("blk: %s error on disk %d at sector %u: %s\n", what, disk, sector,
	       blk_strerror(rc));
}

static void blk_list(void)
{
	if (blk_count() == 0) {
		printf("no block devices\n");
		return;
	}
	for (int i = 0; i < blk_count(); i++) {
		struct lg_device *dev = blk_device(i);
		u32 n = blk_sectors(i);

		if (!(dev->desc->status & LGUEST_DEVICE_S_DRIVER_OK)) {
			printf("disk %d: not ready (probe failed), features 0x%04x, irq %u, device %u\n",
			       i, dev->desc->features, dev->irq, dev->index);
			continue;
		}
		printf("disk %d: %u sectors, %llu bytes (%u.%02u MiB), features 0x%04x, irq %u, device %u\n",
		       i, n, (unsigned long long)n * BLK_SECTOR_SIZE, n / 2048,
		       (n % 2048) * 100 / 2048, dev->desc->features, dev->irq, dev->index);
	}
}

/* hexdump -C style: offset (bytes from the start of the disk), 16 bytes
 * in two groups of 8, the printable ones between bars. */
static void hexdump(const u8 *p, u32 len, u64 offset)
{
	static const char hexd[] = "0123456789abcdef";
	static char out[4096];
	size_t n = 0;

	for (u32 i = 0; i < len; i += 16) {
		char *l;

		if (n + 128 > sizeof(out)) {
			console_write(out, n);
			n = 0;
		}
		l = out + n;
		n += (size_t)snprintf(l, 16, "%08llx  ", (unsigned long long)(offset + i));
		for (u32 k = 0; k < 16; k++) {
			u8 b = p[i + k];

			out[n++] = hexd[b >> 4];
			out[n++] = hexd[b & 15];
			out[n++] = ' ';
			if (k == 7)
				out[n++] = ' ';
		}
		out[n++] = ' ';
		out[n++] = '|';
		for (u32 k = 0; k < 16; k++)
			out[n++] = isprint(p[i + k]) ? (char)p[i + k] : '.';
		out[n++] = '|';
		out[n++] = '\n';
	}
	console_write(out, n);
}

static int blk_cmd_read(int argc, char **argv)
{
	u32 sector, count = 1;
	int disk, rc;
	u8 *buf;

	if (argc < 4 || argc > 5) {
		printf("usage: blk read DISK SECTOR [COUNT]\n");
		return 1;
	}
	if ((disk = blk_disk_arg(argv[2])) < 0)
		return 1;
	if (!parse_u32(argv[3], &sector) || (argc == 5 && !parse_u32(argv[4], &count))) {
		printf("blk: bad number\n");
		return 1;
	}
	if (count == 0)
		count = 1;
	if (count > BLK_DUMP_MAX) {
		printf("blk: COUNT capped at %u sectors\n", BLK_DUMP_MAX);
		count = BLK_DUMP_MAX;
	}
	if (!blk_range_ok(disk, sector, count) || !(buf = blk_buffer()))
		return 1;
	rc = blk_read(disk, sector, buf, count * BLK_SECTOR_SIZE);
	if (rc) {
		blk_io_error("read", disk, sector, rc);
		return 1;
	}
	hexdump(buf, count * BLK_SECTOR_SIZE, (u64)sector * BLK_SECTOR_SIZE);
	return 0;
}

static int blk_cmd_write(int argc, char **argv)
{
	const char *text;
	u32 sector, len, count;
	int disk, rc;
	u8 *buf;

	if (argc < 5) {
		printf("usage: blk write DISK SECTOR TEXT...\n");
		return 1;
	}
	if ((disk = blk_disk_arg(argv[2])) < 0)
		return 1;
	if (!parse_u32(argv[3], &sector)) {
		printf("blk: bad sector number '%s'\n", argv[3]);
		return 1;
	}
	text = rest_of_line(argv, 4);
	len = (u32)strlen(text);
	count = (len + BLK_SECTOR_SIZE - 1) / BLK_SECTOR_SIZE;
	if (!blk_range_ok(disk, sector, count) || !(buf = blk_buffer()))
		return 1;
	memset(buf, 0, count * BLK_SECTOR_SIZE);
	memcpy(buf, text, len);
	rc = blk_write(disk, sector, buf, count * BLK_SECTOR_SIZE);
	if (rc) {
		blk_io_error("write", disk, sector, rc);
		return 1;
	}
	printf("wrote %u sector(s)\n", count);
	return 0;
}

static int blk_cmd_crc(int argc, char **argv)
{
	u32 n, crc = 0;
	int disk;
	u8 *buf;

	if (argc != 3) {
		printf("usage: blk crc DISK\n");
		return 1;
	}
	if ((disk = blk_disk_arg(argv[2])) < 0 || !(buf = blk_buffer()))
		return 1;
	n = blk_sectors(disk);
	for (u32 s = 0; s < n;) {
		u32 count = n - s < BLK_MAX_REQUEST / BLK_SECTOR_SIZE ? n - s
								     : BLK_MAX_REQUEST / BLK_SECTOR_SIZE;
		int rc = blk_read(disk, s, buf, count * BLK_SECTOR_SIZE);

		if (rc) {
			blk_io_error("read", disk, s, rc);
			return 1;
		}
		crc = crc32(crc, buf, count * BLK_SECTOR_SIZE);
		s += count;
	}
	printf("crc32 %08x\n", crc);
	return 0;
}

static int blk_cmd_bench(int argc, char **argv)
{
	const u32 per = BLK_MAX_REQUEST / BLK_SECTOR_SIZE;
	struct lguest_timespec t0, t1;
	unsigned long irqs = 0, requests = 0;
	u64 bytes, ns, rate;
	bool write = false;
	u32 n;
	int disk;
	u8 *buf;

	if (argc == 4 && strcmp(argv[3], "write") == 0)
		write = true;
	else if (argc != 3) {
		printf("usage: blk bench DISK [write]\n");
		return 1;
	}
	if ((disk = blk_disk_arg(argv[2])) < 0 || !(buf = blk_buffer()))
		return 1;
	n = blk_sectors(disk);
	if (write)                          /* a recognisable pattern, not zeros */
		for (u32 i = 0; i < BLK_MAX_REQUEST; i++)
			buf[i] = (u8)(i * 7 + 1);
	t0 = time_now();                    /* fresh: right after IRQ 0 */
	for (u32 s = 0; s < n; s += per) {
		u32 count = n - s < per ? n - s : per;
		int rc;

		irqs = irq_count(blk_device(disk)->irq);
		rc = write ? blk_write(disk, s, buf, count * BLK_SECTOR_SIZE)
			   : blk_read(disk, s, buf, count * BLK_SECTOR_SIZE);
		if (rc) {
			blk_io_error(write ? "write" : "read", disk, s, rc);
			return 1;
		}
		requests++;
	}
	/* The host writes the time at every interrupt delivery: if the last
	 * request's IRQ has been delivered, that time is its completion. */
	if (requests && irq_count(blk_device(disk)->irq) != irqs)
		t1 = time_last();
	else
		t1 = time_now();
	bytes = (u64)n * BLK_SECTOR_SIZE;
	ns = time_diff_ns(t0, t1);
	if (ns == 0)
		ns = 1;
	rate = bytes * 100000u / ns;        /* MB/s (10^6 bytes), x100 */
	printf("%s %llu bytes in %llu.%03llu ms, %llu.%02llu MB/s (%lu request(s) of up to 64 KiB)\n",
	       write ? "wrote" : "read", (unsigned long long)bytes, (unsigned long long)(ns / 1000000),
	       (unsigned long long)(ns / 1000 % 1000), (unsigned long long)(rate / 100),
	       (unsigned long long)(rate % 100), requests);
	return 0;
}

static int cmd_blk(int argc, char **argv)
{
	if (argc == 1) {
		blk_list();
		return 0;
	}
	if (strcmp(argv[1], "read") == 0)
		return blk_cmd_read(argc, argv);
	if (strcmp(argv[1], "write") == 0)
		return blk_cmd_write(argc, argv);
	if (strcmp(argv[1], "crc") == 0)
		return blk_cmd_crc(argc, argv);
	if (strcmp(argv[1], "bench") == 0)
		return blk_cmd_bench(argc, argv);
	printf("blk: unknown subcommand '%s' (try help)\n", argv[1]);
	return 1;
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
	{ "blk",      "",        "list the block devices (disks)",     cmd_blk },
	{ "blk",      "read DISK SECTOR [COUNT]", "hex dump COUNT sectors (default 1, max 64)", NULL },
	{ "blk",      "write DISK SECTOR TEXT...", "write TEXT, zero-padded to whole sectors", NULL },
	{ "blk",      "crc DISK", "CRC-32 (zlib) of the whole disk",   NULL },
	{ "blk",      "bench DISK [write]", "time reading (or overwriting!) the whole disk in 64 KiB requests", NULL },
	{ "net",      "",        "network devices, address, counters, ARP cache", netcmd_net },
	{ "net",      "up|down NET", "open / close net device NET",    NULL },
	{ "net",      "promisc NET on|off", "set / clear promiscuous mode", NULL },
	{ "ping",     "ADDR [COUNT] [SIZE]", "ICMP echo, 1 s apart (default 4, 56 bytes)", netcmd_ping },
	{ "udp",      "ADDR PORT TEXT...", "send a UDP datagram, show the reply", netcmd_udp },
	{ "poweroff", "",        "power the guest off",                cmd_poweroff },
};

static int cmd_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	for (unsigned i = 0; i < ARRAY_SIZE(commands); i++) {
		char usage[48];

		snprintf(usage, sizeof(usage), "%s %s", commands[i].name, commands[i].args);
		printf("  %-30s %s\n", usage, commands[i].help);
	}
	return 0;
}

static void run_line(char *line)
{
	char *argv[ARGS_MAX + 1], *save;
	int argc = 0;

	strlcpy(raw_line, line, sizeof(raw_line));
	token_base = line;
	for (char *tok = strtok_r(line, " \t", &save); tok && argc < ARGS_MAX;
	     tok = strtok_r(NULL, " \t", &save))
		argv[argc++] = tok;
	argv[argc] = NULL;
	if (argc == 0)
		return;
	for (unsigned i = 0; i < ARRAY_SIZE(commands); i++)
		if (commands[i].run && strcmp(argv[0], commands[i].name) == 0) {
			commands[i].run(argc, argv);
			return;
		}
	printf("unknown command: %s (try help)\n", argv[0]);
}

/* ---- Line editing ---------------------------------------------------------- */

/* Echo is collected and sent in one DMA per burst of input. None at a
 * terminal in line mode (LGUEST_CONSOLE_F_IN_LINE): it echoed the line
 * itself, as it was typed (docs/guest-abi.md §10). */
static char echo_buf[128];
static size_t echo_len;

static void echo_flush(void)
{
	if (!(console_features() & LGUEST_CONSOLE_F_IN_LINE))
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

/* The line being edited: text, length and cursor; and the history. */
#define HISTORY 16

struct editor {
	char *buf;
	size_t size, len, cur;
};

static char history[HISTORY][LINE_MAX];
static unsigned hist_count;                 /* lines ever added */

static void echo_n(const char *s, size_t n)
{
	while (n--) {
		char c[2] = { *s++, '\0' };

		echo(c);
	}
}

static void cursor_left(size_t n)
{
	while (n--)
		echo("\b");
}

/* Show buf[from..len), then clear `extra` cells and put the cursor back. */
static void redraw_from(struct editor *e, size_t from, size_t extra)
{
	echo_n(e->buf + from, e->len - from);
	for (size_t i = 0; i < extra; i++)
		echo(" ");
	cursor_left(e->len - from + extra);
	cursor_left(from - e->cur);
}

static void insert_char(struct editor *e, char c)
{
	if (e->len >= e->size - 1)
		return;
	memmove(e->buf + e->cur + 1, e->buf + e->cur, e->len - e->cur);
	e->buf[e->cur] = c;
	e->len++;
	echo_n(&c, 1);
	e->cur++;
	redraw_from(e, e->cur, 0);
}

static void delete_at(struct editor *e, size_t at)
{
	if (at >= e->len)
		return;
	memmove(e->buf + at, e->buf + at + 1, e->len - at - 1);
	e->len--;
	cursor_left(e->cur - at);
	e->cur = at;
	redraw_from(e, at, 1);
}

/* Replace the whole line (history): erase what is shown, show text. */
static void replace_line(struct editor *e, const char *text)
{
	size_t old = e->len;

	cursor_left(e->cur);
	e->len = strlcpy(e->buf, text, e->size);
	if (e->len > e->size - 1)
		e->len = e->size - 1;
	e->cur = 0;
	echo_n(e->buf, e->len);
	e->cur = e->len;
	if (old > e->len) {
		for (size_t i = e->len; i < old; i++)
			echo(" ");
		cursor_left(old - e->len);
	}
}

static void history_add(const char *line)
{
	if (!*line)
		return;
	if (hist_count && strcmp(history[(hist_count - 1) % HISTORY], line) == 0)
		return;                      /* no repeats in a row */
	strlcpy(history[hist_count % HISTORY], line, LINE_MAX);
	hist_count++;
}

/* Read one line into buf (NUL-terminated, without the Enter). False at
 * the end of input with nothing read (a last line without an Enter still
 * counts as a line, as in sh).
 *
 * Editing: left/right arrows (and Ctrl-B/Ctrl-F) move, Home/End (Ctrl-A/
 * Ctrl-E) jump, backspace deletes before the cursor and Delete (Ctrl-D)
 * under it, up/down (Ctrl-P/Ctrl-N) walk the last 16 lines, Ctrl-U clears
 * the line, Ctrl-C drops it, Ctrl-D on an empty line is end of input. Escape sequences: ESC [ or ESC O, then A B C D H F, or
 * a number and '~' (1/7 Home, 4/8 End, 3 Delete). */
static bool read_line(char *buf, size_t size)
{
	static bool after_cr;      /* swallow the '\n' of a "\r\n" */
	static char saved[LINE_MAX];
	struct editor e = { buf, size, 0, 0 };
	unsigned back = 0;         /* 0: the new line; n: n lines back in history */
	int esc = 0;               /* 0 none, 1 after ESC, 2 after ESC [ or ESC O */
	unsigned esc_num = 0;

	for (;;) {
		int c = console_trygetc();

		if (c < 0) {
			echo_flush();
			c = console_getc();
			if (c < 0) {       /* end of input, or none at all */
				if (!e.len)
					return false;
				echo("\n");
				echo_flush();
				buf[e.len] = '\0';
				history_add(buf);
				return true;
			}
		}
		if (c == '\n' && after_cr) {
			after_cr = false;
			continue;
		}
		after_cr = (c == '\r');

		if (esc == 1) {
			esc = (c == '[' || c == 'O') ? 2 : 0;
			esc_num = 0;
			continue;
		}
		if (esc == 2) {
			if (isdigit(c)) {
				esc_num = esc_num * 10 + (unsigned)(c - '0');
				continue;
			}
			esc = 0;
			if (c == '~')
				c = esc_num == 1 || esc_num == 7 ? 0x01 :
				    esc_num == 4 || esc_num == 8 ? 0x05 :
				    esc_num == 3 ? 0x104 : 0;
			else
				c = c == 'A' ? 0x10 : c == 'B' ? 0x0e : c == 'C' ? 0x06 :
				    c == 'D' ? 0x02 : c == 'H' ? 0x01 : c == 'F' ? 0x05 : 0;
			if (!c)
				continue;
		}

		switch (c) {
		case '\r':
		case '\n':
			echo("\n");
			echo_flush();
			buf[e.len] = '\0';
			history_add(buf);
			return true;
		case 0x1b:
			esc = 1;
			break;
		case 0x7f:
		case 0x08:                         /* backspace */
			if (e.cur)
				delete_at(&e, e.cur - 1);
			break;
		case 0x104:                        /* Delete */
			delete_at(&e, e.cur);
			break;
		case 0x02:                         /* left */
			if (e.cur) {
				e.cur--;
				echo("\b");
			}
			break;
		case 0x06:                         /* right */
			if (e.cur < e.len) {
				echo_n(buf + e.cur, 1);
				e.cur++;
			}
			break;
		case 0x01:                         /* Home */
			cursor_left(e.cur);
			e.cur = 0;
			break;
		case 0x05:                         /* End */
			echo_n(buf + e.cur, e.len - e.cur);
			e.cur = e.len;
			break;
		case 0x10:                         /* up: an older line */
		case 0x0e: {                       /* down: a newer one */
			unsigned have = hist_count < HISTORY ? hist_count : HISTORY;
			unsigned want = c == 0x10 ? back + 1 : back - 1;

			if (c == 0x0e && back == 0)
				break;
			if (want > have)
				break;
			if (back == 0) {           /* leaving the new line: keep it */
				buf[e.len] = '\0';
				strlcpy(saved, buf, sizeof(saved));
			}
			back = want;
			replace_line(&e, back ? history[(hist_count - back) % HISTORY] : saved);
			break;
		}
		case 0x04:                         /* Ctrl-D: EOF on an empty line */
			if (e.len == 0) {
				echo_flush();
				return false;
			}
			delete_at(&e, e.cur);      /* else delete, as in readline */
			break;
		case 0x03:                         /* Ctrl-C: drop the line */
			echo("^C\n" PROMPT);
			e.len = e.cur = 0;
			back = 0;
			break;
		case 0x15:                         /* Ctrl-U: erase the line */
			cursor_left(e.cur);
			e.cur = 0;
			{
				size_t old = e.len;

				e.len = 0;
				for (size_t i = 0; i < old; i++)
					echo(" ");
				cursor_left(old);
			}
			break;
		default:
			if (c == '\t')
				c = ' ';           /* one cell wide, for the cursor */
			if (isprint(c))
				insert_char(&e, (char)c);
		}
	}
}

int main(void)
{
	static char line[LINE_MAX];

	printf("lguest shell: %u MiB RAM. Type 'help' for commands.\n", lg_mem >> 20);
	netcmd_init();              /* net0 up with ip= (kit/netcmd.c) */
	for (;;) {
		printf(PROMPT);
		if (!read_line(line, sizeof(line))) {
			printf("\n");  /* end of input: power off, as after 'poweroff' */
			return 0;
		}
		run_line(line);
	}
}
