/*
 * posix/sjlj.c: the runtime of clang 14's setjmp/longjmp lowering for
 * WebAssembly (`-mllvm -wasm-enable-sjlj`, LLVM's
 * WebAssemblyLowerEmscriptenEHSjLj), as LLVM's contract wants it:
 *
 *   setjmp(env)        -> saveSetjmp(env, label, table, size): a fresh id
 *                         into env[0], (id, label) into the caller's table
 *   longjmp(env, val)  -> __wasm_longjmp(env, val): throws the C longjmp
 *                         tag (a wasm exception) with (env, val)
 *   in each function that called setjmp, a catch runs
 *                         testSetjmp(env[0], table, size) to find the label
 *
 * Single-threaded, as every lguest guest. Must itself be compiled with
 * -mllvm -wasm-enable-sjlj (it defines the tag it throws: clang 14 only
 * does that in a file that also calls setjmp, hence the dummy below).
 */
#include <stdint.h>
#include <stdlib.h>
#include <setjmp.h>

struct entry {
	uint32_t id, label;
};

static uint32_t next_id;
static uint32_t temp_ret0;

void setTempRet0(uint32_t v)
{
	temp_ret0 = v;
}

uint32_t getTempRet0(void)
{
	return temp_ret0;
}

struct entry *saveSetjmp(uint32_t *env, uint32_t label, struct entry *table, uint32_t size)
{
	uint32_t i;

	*env = ++next_id;
	for (i = 0; i < size; i++) {
		if (table[i].id == 0) {
			table[i].id = next_id;
			table[i].label = label;
			table[i + 1].id = 0;    /* the table has size + 1 slots */
			setTempRet0(size);
			return table;
		}
	}
	size *= 2;
	table = realloc(table, sizeof(struct entry) * (size + 1));
	if (!table)
		abort();
	table[i].id = next_id;
	table[i].label = label;
	table[i + 1].id = 0;
	setTempRet0(size);
	return table;
}

uint32_t testSetjmp(uint32_t id, struct entry *table, uint32_t size)
{
	for (uint32_t i = 0; i < size && table[i].id; i++)
		if (table[i].id == id)
			return table[i].label;
	return 0;
}

struct longjmp_args {
	void *env;
	int val;
};

static struct longjmp_args args;

void __wasm_longjmp(void *env, int val)
{
	args.env = env;
	args.val = val;
	__builtin_wasm_throw(1, &args);  /* tag 1: C longjmp */
}

/* Makes clang define the C longjmp tag in this file (see above). */
int __lguest_sjlj_anchor(jmp_buf env)
{
	return setjmp(env);
}
