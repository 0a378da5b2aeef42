/* Small helpers shared by every module: checked allocation, time, string building. */
#ifndef SPECLINE_UTIL_H
#define SPECLINE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation that aborts with a message on out-of-memory (we do not limp on after ENOMEM). */
void *sl_malloc(size_t n);
void *sl_calloc(size_t n, size_t size);
void *sl_realloc(void *p, size_t n);
char *sl_strdup(const char *s);                    /* NULL in, NULL out */
char *sl_strndup(const char *s, size_t n);
char *sl_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* sl_asprintf with the arguments in ap (left used, as vprintf leaves it): a new string the
 * caller frees; aborts on out-of-memory like sl_malloc. */
char *sl_vasprintf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));

/* Seconds since the epoch (wall clock) and a monotonic clock in seconds and nanoseconds. */
double sl_now(void);
double sl_mono(void);
uint64_t sl_mono_ns(void);

/* Bounded copy that always terminates dst (dst_size > 0); returns false if truncated. */
bool sl_strlcpy(char *dst, const char *src, size_t dst_size);

/* Growable byte buffer, caller storage: _init/_release. */
typedef struct sl_buf {
  char *data;
  size_t len;
  size_t cap;
} sl_buf_t;
void sl_buf_init(sl_buf_t *b);
void sl_buf_release(sl_buf_t *b);
void sl_buf_append(sl_buf_t *b, const void *p, size_t n);
void sl_buf_printf(sl_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void sl_buf_vprintf(sl_buf_t *b, const char *fmt, va_list ap);
/* Detaches the data (NUL-terminated, malloc'd) from the buffer: the caller owns the
 * returned string and frees it; the buffer is empty afterwards and may be reused.
 * (Named after git's strbuf_detach: `_take` is reserved for the callee taking ownership.) */
char *sl_buf_detach(sl_buf_t *b);

/* Length of the valid UTF-8 sequence at p (n > 0 bytes available), or 0 if invalid. Strict:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
size_t sl_utf8_seq(const unsigned char *p, size_t n);
/* Length of the longest valid UTF-8 prefix of s[0..n): n when all of it is valid, else the
 * offset of the first invalid byte. */
size_t sl_utf8_valid_prefix(const char *s, size_t n);

/* 64-bit FNV-1a and a hex rendering, used for deterministic ids. */
uint64_t sl_hash64(const void *p, size_t n, uint64_t seed);

/* Directory of the running executable (from /proc/self/exe), malloc'd, or NULL. */
char *sl_exe_dir(void);

/* Finds a helper program: first next to the running executable, then on PATH. Returns a
 * malloc'd path or NULL. */
char *sl_find_program(const char *name);

/* Reads a whole file (up to max bytes) into a malloc'd NUL-terminated buffer. */
char *sl_read_file(const char *path, size_t max, size_t *len_out);

#endif
