/* Internal to the config layer: the step of loading that makes the paths a config names
 * relative to the config file (config_paths.c). */
#ifndef SPECLINE_CONFIG_PRIVATE_H
#define SPECLINE_CONFIG_PRIVATE_H

#include "specline/config.h"

/* Keeps what the file wrote in cfg->written, sets cfg->dir to the absolute directory of
 * `path` (NULL for a config read from a string: nothing is resolved then) and resolves
 * store, credentials_file and the simulator command against it (docs/config.md). Never
 * fails: a path that cannot be made absolute (getcwd failing) is left as written. */
void sl__config_resolve_paths(sl_config_t *cfg, const char *path);

/* The absolute directory holding the file `path` (symlinks not resolved), or NULL when the
 * current directory is unknown. The caller frees it. */
char *sl__config_dir(const char *path);

/* Copies (dest != NULL) or checks (dest NULL) one template file or directory `src`, as
 * sl_config_templates_apply does for each of a config's templates. */
bool sl__config_template_apply_one(const char *src, const char *dest, sl_template_lookup_fn lookup, void *ud,
                                   sl_error_t *err);

#endif
