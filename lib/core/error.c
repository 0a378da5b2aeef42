/* sl_error_t: setting, clearing and prefixing errors, and domain names. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "specline/error.h"

void sl_error_set(sl_error_t *err, int domain, int code, const char *fmt, ...)
{
  va_list ap;

  if (!err)
    return;
  err->domain = domain;
  err->code = code;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
}

void sl_error_clear(sl_error_t *err)
{
  if (!err)
    return;
  err->domain = SL_ERR_NONE;
  err->code = 0;
  err->message[0] = '\0';
}

void sl_error_prefix(sl_error_t *err, const char *fmt, ...)
{
  char prefix[256];
  char old[sizeof err->message];
  va_list ap;

  if (!err)
    return;
  va_start(ap, fmt);
  vsnprintf(prefix, sizeof prefix, fmt, ap);
  va_end(ap);
  memcpy(old, err->message, sizeof old);
  snprintf(err->message, sizeof err->message, "%s: %s", prefix, old);
}

const char *sl_domain_name(int domain)
{
  static const char *const names[] = {
      [SL_ERR_NONE] = "none",   [SL_ERR_SYS] = "system", [SL_ERR_CONFIG] = "config",
      [SL_ERR_AMQP] = "amqp",   [SL_ERR_PROTO] = "proto", [SL_ERR_STORE] = "store",
      [SL_ERR_UV] = "uv",       [SL_ERR_HTTP] = "http",   [SL_ERR_MODEL] = "model",
      [SL_ERR_SIM] = "sim",     [SL_ERR_CUDA] = "cuda",   [SL_ERR_USAGE] = "usage", [SL_ERR_TEMPLATE] = "template",
  };

  if (domain < 0 || (size_t)domain >= sizeof names / sizeof names[0] || !names[domain])
    return "unknown";
  return names[domain];
}
