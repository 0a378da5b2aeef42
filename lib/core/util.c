/* Checked allocation, clocks, bounded strings, a growable buffer, hashing and finding the
 * helper programs that ship beside the `specline` binary. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "specline/util.h"

static void oom(size_t n)
{
  fprintf(stderr, "specline: out of memory allocating %zu bytes\n", n);
  abort();
}

void *sl_malloc(size_t n)
{
  void *p = malloc(n ? n : 1);
  if (!p)
    oom(n);
  return p;
}

void *sl_calloc(size_t n, size_t size)
{
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p)
    oom(n * size);
  return p;
}

void *sl_realloc(void *p, size_t n)
{
  void *q = realloc(p, n ? n : 1);
  if (!q)
    oom(n);
  return q;
}

char *sl_strdup(const char *s)
{
  return s ? sl_strndup(s, strlen(s)) : NULL;
}

char *sl_strndup(const char *s, size_t n)
{
  char *d;
  size_t len = strnlen(s, n);

  d = sl_malloc(len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

char *sl_vasprintf(const char *fmt, va_list ap)
{
  sl_buf_t b;

  sl_buf_init(&b);
  sl_buf_vprintf(&b, fmt, ap);
  return sl_buf_detach(&b);
}

char *sl_asprintf(const char *fmt, ...)
{
  va_list ap;
  char *s;

  va_start(ap, fmt);
  s = sl_vasprintf(fmt, ap);
  va_end(ap);
  return s;
}

double sl_now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double sl_mono(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t sl_mono_ns(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

bool sl_strlcpy(char *dst, const char *src, size_t dst_size)
{
  size_t len = strlen(src);

  if (len < dst_size) {
    memcpy(dst, src, len + 1);
    return true;
  }
  memcpy(dst, src, dst_size - 1);
  dst[dst_size - 1] = '\0';
  return false;
}

void sl_buf_init(sl_buf_t *b)
{
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
}

void sl_buf_release(sl_buf_t *b)
{
  free(b->data);
  sl_buf_init(b);
}

static void buf_reserve(sl_buf_t *b, size_t extra)
{
  size_t need = b->len + extra + 1;

  if (need <= b->cap)
    return;
  if (b->cap * 2 > need)
    need = b->cap * 2;
  if (need < 64)
    need = 64;
  b->data = sl_realloc(b->data, need);
  b->cap = need;
}

void sl_buf_append(sl_buf_t *b, const void *p, size_t n)
{
  buf_reserve(b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

void sl_buf_vprintf(sl_buf_t *b, const char *fmt, va_list ap)
{
  va_list ap2;
  int n;

  va_copy(ap2, ap);
  n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0)
    return;
  buf_reserve(b, (size_t)n);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
}

void sl_buf_printf(sl_buf_t *b, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  sl_buf_vprintf(b, fmt, ap);
  va_end(ap);
}

char *sl_buf_detach(sl_buf_t *b)
{
  char *d;

  buf_reserve(b, 0);
  b->data[b->len] = '\0'; /* an empty buffer was never terminated */
  d = b->data;
  sl_buf_init(b);
  return d;
}

size_t sl_utf8_seq(const unsigned char *p, size_t n)
{
  unsigned c = p[0];

  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf)
    return (n >= 2 && (p[1] & 0xc0) == 0x80) ? 2 : 0;
  if (c >= 0xe0 && c <= 0xef) {
    if (n < 3 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80)
      return 0;
    if (c == 0xe0 && p[1] < 0xa0)
      return 0; /* overlong */
    if (c == 0xed && p[1] > 0x9f)
      return 0; /* surrogate */
    return 3;
  }
  if (c >= 0xf0 && c <= 0xf4) {
    if (n < 4 || (p[1] & 0xc0) != 0x80 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80)
      return 0;
    if (c == 0xf0 && p[1] < 0x90)
      return 0; /* overlong */
    if (c == 0xf4 && p[1] > 0x8f)
      return 0; /* above U+10FFFF */
    return 4;
  }
  return 0;
}

size_t sl_utf8_valid_prefix(const char *s, size_t n)
{
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, seq;

  while (i < n && (seq = sl_utf8_seq(p + i, n - i)) > 0)
    i += seq;
  return i;
}

uint64_t sl_hash64(const void *p, size_t n, uint64_t seed)
{
  const unsigned char *c = p;
  uint64_t h = 1469598103934665603ull ^ seed;
  size_t i;

  for (i = 0; i < n; i++) {
    h ^= c[i];
    h *= 1099511628211ull;
  }
  /* final avalanche (splitmix64) so nearby inputs spread over all bits */
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ull;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebull;
  h ^= h >> 31;
  return h;
}

char *sl_exe_dir(void)
{
  char path[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", path, sizeof path - 1);
  char *slash;

  if (n <= 0)
    return NULL;
  path[n] = '\0';
  slash = strrchr(path, '/');
  if (!slash)
    return NULL;
  *slash = '\0';
  return sl_strdup(path);
}

static bool is_exec(const char *path)
{
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

char *sl_find_program(const char *name)
{
  char *dir, *cand, *path, *p, *tok;

  if (strchr(name, '/'))
    return is_exec(name) ? sl_strdup(name) : NULL;
  dir = sl_exe_dir();
  if (dir) {
    cand = sl_asprintf("%s/%s", dir, name);
    free(dir);
    if (is_exec(cand))
      return cand;
    free(cand);
  }
  path = sl_strdup(getenv("PATH") ? getenv("PATH") : "/usr/local/bin:/usr/bin:/bin");
  for (p = path; (tok = strsep(&p, ":")) != NULL;) {
    if (!*tok)
      continue;
    cand = sl_asprintf("%s/%s", tok, name);
    if (is_exec(cand)) {
      free(path);
      return cand;
    }
    free(cand);
  }
  free(path);
  return NULL;
}

char *sl_read_file(const char *path, size_t max, size_t *len_out)
{
  FILE *f = fopen(path, "rb");
  sl_buf_t b;
  char chunk[65536];
  size_t n;

  if (!f)
    return NULL;
  sl_buf_init(&b);
  while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
    if (b.len + n > max) {
      fclose(f);
      sl_buf_release(&b);
      errno = EFBIG;
      return NULL;
    }
    sl_buf_append(&b, chunk, n);
  }
  fclose(f);
  if (len_out)
    *len_out = b.len;
  return sl_buf_detach(&b);
}
