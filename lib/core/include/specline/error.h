/* The one error type of specline: a domain, a code within it and a message. Errors of
 * dependencies (rabbitmq-c, libyaml, jansson, libuv, sqlite, libmongoc, curl, CUDA) are
 * translated into a domain once, at the boundary that calls them. */
#ifndef SPECLINE_ERROR_H
#define SPECLINE_ERROR_H

#include <stdbool.h>

typedef enum sl_domain {
  SL_ERR_NONE = 0,
  SL_ERR_SYS,    /* errno values (ENOENT, ...) */
  SL_ERR_CONFIG, /* config.yaml: sl_config_code_t (specline/config.h) */
  SL_ERR_AMQP,   /* broker and rabbitmq-c: AMQP reply codes, amqp_status_enum or sl_amqp_code_t
                    (specline/amqp.h) */
  SL_ERR_PROTO,  /* message decode: sl_proto_code_t (specline/proto.h) */
  SL_ERR_STORE,  /* store backends: sl_store_code_t (specline/store.h) */
  SL_ERR_UV,     /* libuv: negative uv errno */
  SL_ERR_HTTP,   /* management API: CURLcode or HTTP status */
  SL_ERR_MODEL,  /* surrogate model files and training: sl_model_code_t (specline/model.h) */
  SL_ERR_SIM,    /* simulator protocol: sl_sim_code_t (specline/simline.h) */
  SL_ERR_CUDA,   /* cudaError_t, cublasStatus_t, ncclResult_t or sl_cuda_code_t (learn's gpu.h) */
  SL_ERR_USAGE,  /* command-line usage and bad arguments: sl_usage_code_t (below) */
  SL_ERR_TEMPLATE, /* run-directory input templates: sl_template_code_t (specline/template.h) */
} sl_domain_t;

/* Codes of domain SL_ERR_USAGE, which belongs to no layer. */
typedef enum sl_usage_code {
  SL_USAGE_E_INVALID = 1, /* a bad argument, option or input value */
  SL_USAGE_E_NO_BROKER,   /* no broker given: no url, no `broker:` in the config, no --broker-dir */
  SL_USAGE_E_NOT_FOUND,   /* a program the command runs cannot be found */
} sl_usage_code_t;

typedef struct sl_error {
  int domain;
  int code;
  char message[256];
} sl_error_t;

/* Sets *err (a no-op when err is NULL). The message is printf-formatted, lower-case, no
 * trailing period, and truncated to fit. */
void sl_error_set(sl_error_t *err, int domain, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Clears *err to domain SL_ERR_NONE (no-op on NULL). */
void sl_error_clear(sl_error_t *err);

/* Prefixes the existing message of *err with the given context ("loading 'x': <old>"). */
void sl_error_prefix(sl_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A short lower-case name of a domain ("amqp", "config", ...). Never NULL. */
const char *sl_domain_name(int domain);

#endif
