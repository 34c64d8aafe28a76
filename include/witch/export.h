/*
 * witch/export.h: symbol visibility for libwitch.
 *
 * libwitch is built with -fvisibility=hidden; only functions marked
 * WITCH_EXTERN are exported, and the version script admits only witch_*.
 */
#ifndef WITCH_EXPORT_H
#define WITCH_EXPORT_H

#if defined(WITCH_BUILDING_LIB) && defined(__GNUC__)
#define WITCH_EXTERN __attribute__((visibility("default")))
#else
#define WITCH_EXTERN
#endif

#if defined(__GNUC__)
#define WITCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define WITCH_PRINTF(f, a)
#endif

#ifdef __cplusplus
#define WITCH_BEGIN_DECLS extern "C" {
#define WITCH_END_DECLS }
#else
#define WITCH_BEGIN_DECLS
#define WITCH_END_DECLS
#endif

#endif /* WITCH_EXPORT_H */
