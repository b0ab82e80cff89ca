/*
 * device_types.h: every lguest device type number, in one list.
 *
 * 1..3 are 2.6.23's (lguest_user.h, also in lguest.h); numbers from 4 on
 * are this project's. The TypeScript side is abi/device_types.ts, and
 * tests/device_types_test.ts fails if the two lists differ. To add a type:
 * one X(...) line here and one entry there.
 *
 * X(number, NAME, "name"): NAME gives LGUEST_DEVICE_T_NAME.
 */
#ifndef LGUEST_DEVICE_TYPES_H
#define LGUEST_DEVICE_TYPES_H

#define LGUEST_DEVICE_TYPES(X)         \
	X(1, CONSOLE, "console")       \
	X(2, NET, "net")               \
	X(3, BLOCK, "block")           \
	X(4, RNG, "rng")

/* This project's types (1..3 are in lguest.h). */
#define LGUEST_DEVICE_T_RNG 4       /* host random numbers (docs/guest-abi.md) */

#endif /* LGUEST_DEVICE_TYPES_H */
