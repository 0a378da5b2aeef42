/* libFuzzer target for the config.yaml loader: any bytes go through sl_config_load_string,
 * which must either return a config or fail with an error, never crash, leak or read out
 * of bounds. Seeds are in tests/fuzz/corpus/config/. */
#include <stddef.h>
#include <stdint.h>

#include "specline/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load_string((const char *)data, size, "fuzz.yaml", &err);

  sl_config_destroy(cfg);
  return 0;
}
