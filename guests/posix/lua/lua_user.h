/*
 * lua_user.h: Lua's own hook for local configuration (LUA_USER_H, included
 * by lua.h after luaconf.h), for the built-in lua guest.
 *
 * lua_integer2str: an integer in decimal, as snprintf("%lld") writes it
 * (at most sz - 1 characters and a NUL; returns the full length). Lua
 * converts every integer it prints, concatenates or tostring()s through
 * it, and wasi-libc's snprintf (musl's printf_core, a FILE set up per
 * call) was most of tostring(i)'s time in a guest.
 */
#ifndef LGUEST_LUA_USER_H
#define LGUEST_LUA_USER_H

#include <stddef.h>

static inline int lguest_lua_integer2str(char *s, size_t sz, long long n)
{
	char tmp[20];
	unsigned long long u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
	size_t len = 0, m, i;

	do {
		tmp[len++] = (char)('0' + u % 10);
		u /= 10;
	} while (u != 0);
	m = len + (n < 0);
	if (sz > 0) {
		size_t k = 0;
		if (n < 0 && k < sz - 1)
			s[k++] = '-';
		for (i = 0; i < len && k < sz - 1; i++)
			s[k++] = tmp[len - 1 - i];
		s[k] = '\0';
	}
	return (int)m;
}

#undef lua_integer2str
#define lua_integer2str(s, sz, n) lguest_lua_integer2str((s), (sz), (long long)(n))

#endif
