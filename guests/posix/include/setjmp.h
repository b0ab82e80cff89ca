/*
 * setjmp.h for wasi-libc programs on lguest (wasi-libc has none). Compile
 * with clang's `-mllvm -wasm-enable-sjlj`: the compiler lowers setjmp and
 * longjmp to the runtime in guests/posix/sjlj.c, which unwinds with a wasm
 * exception (legacy exception-handling opcodes).
 */
#ifndef LGUEST_POSIX_SETJMP_H
#define LGUEST_POSIX_SETJMP_H

#ifdef __cplusplus
extern "C" {
#endif

/* The first word holds the setjmp's id (LLVM's SjLj lowering). */
typedef struct __jmp_buf_tag {
	unsigned long __jb[8];
} jmp_buf[1], sigjmp_buf[1];

int setjmp(jmp_buf env) __attribute__((returns_twice));
_Noreturn void longjmp(jmp_buf env, int val);
#define _setjmp setjmp
#define _longjmp longjmp
#define sigsetjmp(env, save) setjmp(env)
#define siglongjmp longjmp

#ifdef __cplusplus
}
#endif
#endif
