/*
 * errno.h: error numbers of the guest kit, with their Linux (i386/x86-64)
 * values. The file system (fs.h) returns them negated: -ENOENT etc.
 *
 * These are the plain POSIX names. A translation unit that also includes a
 * C library's <errno.h> (wasi-libc numbers differ from Linux!) gets a
 * macro-redefinition error instead of silently wrong numbers: keep such
 * code apart, or use the LG_E* spellings, which are always defined.
 */
#ifndef LGUEST_KIT_ERRNO_H
#define LGUEST_KIT_ERRNO_H

#define LG_EPERM           1
#define LG_ENOENT          2
#define LG_ESRCH           3
#define LG_EINTR           4
#define LG_EIO             5
#define LG_ENXIO           6
#define LG_E2BIG           7
#define LG_ENOEXEC         8
#define LG_EBADF           9
#define LG_ECHILD         10
#define LG_EAGAIN         11
#define LG_ENOMEM         12
#define LG_EACCES         13
#define LG_EFAULT         14
#define LG_EBUSY          16
#define LG_EEXIST         17
#define LG_EXDEV          18
#define LG_ENODEV         19
#define LG_ENOTDIR        20
#define LG_EISDIR         21
#define LG_EINVAL         22
#define LG_ENFILE         23
#define LG_EMFILE         24
#define LG_ENOTTY         25
#define LG_ETXTBSY        26
#define LG_EFBIG          27
#define LG_ENOSPC         28
#define LG_ESPIPE         29
#define LG_EROFS          30
#define LG_EMLINK         31
#define LG_EPIPE          32
#define LG_EDOM           33
#define LG_ERANGE         34
#define LG_EDEADLK        35
#define LG_ENAMETOOLONG   36
#define LG_ENOLCK         37
#define LG_ENOSYS         38
#define LG_ENOTEMPTY      39
#define LG_ELOOP          40
#define LG_ENOMSG         42
#define LG_EOVERFLOW      75
#define LG_EILSEQ         84
#define LG_ENOTSOCK       88
#define LG_EMSGSIZE       90
#define LG_EPROTONOSUPPORT 93
#define LG_EOPNOTSUPP     95
#define LG_ENOTSUP        LG_EOPNOTSUPP
#define LG_EAFNOSUPPORT   97
#define LG_EADDRINUSE     98
#define LG_EADDRNOTAVAIL  99
#define LG_ENETUNREACH   101
#define LG_ECONNRESET    104
#define LG_ENOBUFS       105
#define LG_ENOTCONN      107
#define LG_ETIMEDOUT     110
#define LG_ECONNREFUSED  111
#define LG_EHOSTUNREACH  113
#define LG_EALREADY      114
#define LG_EINPROGRESS   115
#define LG_ESTALE        116
#define LG_EDQUOT        122
#define LG_ECANCELED     125

#define EPERM           LG_EPERM
#define ENOENT          LG_ENOENT
#define ESRCH           LG_ESRCH
#define EINTR           LG_EINTR
#define EIO             LG_EIO
#define ENXIO           LG_ENXIO
#define E2BIG           LG_E2BIG
#define ENOEXEC         LG_ENOEXEC
#define EBADF           LG_EBADF
#define ECHILD          LG_ECHILD
#define EAGAIN          LG_EAGAIN
#define ENOMEM          LG_ENOMEM
#define EACCES          LG_EACCES
#define EFAULT          LG_EFAULT
#define EBUSY           LG_EBUSY
#define EEXIST          LG_EEXIST
#define EXDEV           LG_EXDEV
#define ENODEV          LG_ENODEV
#define ENOTDIR         LG_ENOTDIR
#define EISDIR          LG_EISDIR
#define EINVAL          LG_EINVAL
#define ENFILE          LG_ENFILE
#define EMFILE          LG_EMFILE
#define ENOTTY          LG_ENOTTY
#define ETXTBSY         LG_ETXTBSY
#define EFBIG           LG_EFBIG
#define ENOSPC          LG_ENOSPC
#define ESPIPE          LG_ESPIPE
#define EROFS           LG_EROFS
#define EMLINK          LG_EMLINK
#define EPIPE           LG_EPIPE
#define EDOM            LG_EDOM
#define ERANGE          LG_ERANGE
#define EDEADLK         LG_EDEADLK
#define ENAMETOOLONG    LG_ENAMETOOLONG
#define ENOLCK          LG_ENOLCK
#define ENOSYS          LG_ENOSYS
#define ENOTEMPTY       LG_ENOTEMPTY
#define ELOOP           LG_ELOOP
#define ENOMSG          LG_ENOMSG
#define EOVERFLOW       LG_EOVERFLOW
#define EILSEQ          LG_EILSEQ
#define ENOTSOCK        LG_ENOTSOCK
#define EMSGSIZE        LG_EMSGSIZE
#define EPROTONOSUPPORT LG_EPROTONOSUPPORT
#define EOPNOTSUPP      LG_EOPNOTSUPP
#define ENOTSUP         LG_ENOTSUP
#define EAFNOSUPPORT    LG_EAFNOSUPPORT
#define EADDRINUSE      LG_EADDRINUSE
#define EADDRNOTAVAIL   LG_EADDRNOTAVAIL
#define ENETUNREACH     LG_ENETUNREACH
#define ECONNRESET      LG_ECONNRESET
#define ENOBUFS         LG_ENOBUFS
#define ENOTCONN        LG_ENOTCONN
#define ETIMEDOUT       LG_ETIMEDOUT
#define ECONNREFUSED    LG_ECONNREFUSED
#define EHOSTUNREACH    LG_EHOSTUNREACH
#define EALREADY        LG_EALREADY
#define EINPROGRESS     LG_EINPROGRESS
#define ESTALE          LG_ESTALE
#define EDQUOT          LG_EDQUOT
#define ECANCELED       LG_ECANCELED

/* A short English name of a (positive) error number, e.g. "ENOENT". */
const char *lg_errname(int err);

#endif /* LGUEST_KIT_ERRNO_H */
