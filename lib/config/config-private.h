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

#endif
