/* Unit tests of the config.yaml loader (lib/src/config.c): a full config with every key,
 * the defaults, and each error class with its exact file:line:column, field and code;
 * Synapse's map forms; the JSON dump; and a robustness pass over every truncated prefix
 * of a valid file; paths relative to the config file. No servers involved. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "sltest.h"
#include "specline/config.h"
#include "specline/util.h"

#ifndef CONFIG_DATA_DIR
#define CONFIG_DATA_DIR "tests/config/data"
#endif

/* Three lines: experiment, inputs, one input. */
#define HEAD "experiment: t\ninputs:\n  - {name: a, value_range: [0, 1]}\n"
/* Two lines: simulator, budget. */
#define TAIL "simulator: {command: [sim]}\nbudget: {max_sims: 5}\n"

static sl_config_t *load(const char *yaml, sl_error_t *err)
{
  sl_error_clear(err);
  return sl_config_load_string(yaml, strlen(yaml), "cfg.yaml", err);
}

/* Loading YAML must fail with CODE and exactly MSG (or, when PREFIX_ONLY, a message
 * starting with MSG). */
static void expect_err_at(int line, const char *yaml, int code, const char *msg, int prefix_only)
{
  sl_error_t err;
  sl_config_t *cfg = load(yaml, &err);

  if (cfg) {
    fprintf(stderr, "  %s:%d: loaded, expected error '%s'\n", __FILE__, line, msg);
    sl_test_failures_++;
    sl_config_destroy(cfg);
    return;
  }
  if (err.domain != SL_ERR_CONFIG || err.code != code) {
    fprintf(stderr, "  %s:%d: domain %d code %d, expected config code %d (%s)\n", __FILE__, line, err.domain,
            err.code, code, err.message);
    sl_test_failures_++;
  }
  if (prefix_only ? strncmp(err.message, msg, strlen(msg)) != 0 : strcmp(err.message, msg) != 0) {
    fprintf(stderr, "  %s:%d: message\n    got:      %s\n    expected: %s%s\n", __FILE__, line, err.message, msg,
            prefix_only ? "..." : "");
    sl_test_failures_++;
  }
}

#define EXPECT_ERR(yaml, code, msg) expect_err_at(__LINE__, (yaml), (code), (msg), 0)
#define EXPECT_ERR_PREFIX(yaml, code, msg) expect_err_at(__LINE__, (yaml), (code), (msg), 1)

static void test_full(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load(CONFIG_DATA_DIR "/full.yaml", &err);

  if (!cfg)
    fprintf(stderr, "  %s\n", err.message);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->path, CONFIG_DATA_DIR "/full.yaml");
  SL_CHECK_STR(cfg->experiment, "damped-oscillator");
  SL_REQUIRE(cfg->n_inputs == 2);
  SL_CHECK_STR(cfg->inputs[0].name, "zeta");
  SL_CHECK_STR(cfg->inputs[0].type, "float");
  SL_CHECK(cfg->inputs[0].has_default);
  SL_CHECK_NEAR(cfg->inputs[0].default_value, 0.1, 1e-15);
  SL_CHECK(cfg->inputs[0].has_range);
  SL_CHECK_NEAR(cfg->inputs[0].lo, 0.02, 1e-15);
  SL_CHECK_NEAR(cfg->inputs[0].hi, 0.5, 1e-15);
  SL_CHECK_STR(cfg->inputs[1].name, "omega");
  SL_CHECK_NEAR(cfg->inputs[1].default_value, 2, 0);
  SL_CHECK_NEAR(cfg->inputs[1].hi, 3.5, 0);
  SL_REQUIRE(cfg->n_outputs == 2);
  SL_CHECK_STR(cfg->outputs[0].name, "amplitude");
  SL_CHECK(!cfg->outputs[0].has_range);
  SL_CHECK(!cfg->outputs[0].has_default);
  SL_CHECK(cfg->outputs[1].has_range);
  SL_CHECK_NEAR(cfg->outputs[1].hi, 100, 0);
  SL_CHECK(cfg->history.present);
  SL_CHECK_STR(cfg->history.name, "x");
  SL_CHECK_INT(cfg->history.checkpoints, 16);
  SL_REQUIRE(cfg->simulator.argc == 3);
  SL_CHECK_STR(cfg->simulator.argv[0], "specline-sim-oscillator");
  SL_CHECK_STR(cfg->simulator.argv[1], "--dt");
  SL_CHECK_STR(cfg->simulator.argv[2], "0.01");
  SL_CHECK(cfg->simulator.argv[3] == NULL);
  SL_CHECK_INT(cfg->simulator.max_steps, 4000);
  SL_CHECK_NEAR(cfg->simulator.wall_s, 120.5, 0);
  SL_CHECK_NEAR(cfg->simulator.step_delay, 0.001, 1e-15);
  SL_CHECK_NEAR(cfg->simulator.term_grace_s, 1, 0);
  SL_CHECK_STR(cfg->policy.initial, "lhs");
  SL_CHECK_INT(cfg->policy.initial_n, 64);
  SL_CHECK_STR(cfg->policy.acquisition, "ucb");
  SL_CHECK_STR(cfg->policy.objective, "energy");
  SL_CHECK_NEAR(cfg->policy.ucb_kappa, 1.5, 0);
  SL_CHECK_NEAR(cfg->policy.oversubscribe, 3, 0);
  SL_CHECK_INT(cfg->policy.batch, 8);
  SL_CHECK_INT(cfg->policy.seed, 42);
  SL_CHECK_NEAR(cfg->policy.diversity, 0.25, 0);
  SL_CHECK(cfg->policy.speculative.enabled);
  SL_CHECK_NEAR(cfg->policy.speculative.min_fraction, 0.3, 1e-15);
  SL_CHECK_NEAR(cfg->policy.speculative.confidence, 0.05, 1e-15);
  SL_CHECK_NEAR(cfg->policy.speculative.surprise_p, 0.001, 1e-15);
  SL_CHECK_NEAR(cfg->policy.speculative.audit_fraction, 0.2, 1e-15);
  SL_CHECK_INT(cfg->budget.max_sims, 500);
  SL_CHECK_INT(cfg->budget.max_steps, 2000000);
  SL_CHECK_NEAR(cfg->budget.target_nrmse, 0.02, 1e-15);
  SL_CHECK_NEAR(cfg->budget.wall_s, 3600, 0);
  SL_CHECK_INT(cfg->learn.ensemble, 3);
  SL_CHECK_INT(cfg->learn.hidden, 128);
  SL_CHECK_INT(cfg->learn.layers, 3);
  SL_CHECK_INT(cfg->learn.epochs, 50);
  SL_CHECK_INT(cfg->learn.batch, 32);
  SL_CHECK_NEAR(cfg->learn.lr, 3e-4, 1e-18);
  SL_CHECK_INT(cfg->learn.retrain_every, 4);
  SL_CHECK_NEAR(cfg->learn.validation_fraction, 0.25, 0);
  SL_CHECK_STR(cfg->learn.loss, "mse");
  SL_CHECK_INT(cfg->workers.simulate_workers, 2);
  SL_CHECK_INT(cfg->workers.slots, 4);
  SL_CHECK_STR(cfg->store, "mongodb://db.example.org/specline");
  SL_CHECK_STR(cfg->broker, "amqps://rabbit.example.org:5671/");
  SL_CHECK_STR(cfg->credentials_file, "/run/secrets/amqp");
  SL_REQUIRE(cfg->n_calibration == 2);
  SL_CHECK_STR(cfg->calibration[0].name, "amplitude");
  SL_CHECK_NEAR(cfg->calibration[0].alpha, 2, 0);
  SL_CHECK_NEAR(cfg->calibration[0].beta, -0.5, 0);
  SL_CHECK_STR(cfg->calibration[1].name, "energy");
  SL_CHECK_NEAR(cfg->calibration[1].alpha, 0.5, 0);
  SL_CHECK_NEAR(cfg->calibration[1].beta, 1, 0);
  SL_CHECK_INT(sl_config_input_index(cfg, "omega"), 1);
  SL_CHECK_INT(sl_config_input_index(cfg, "energy"), -1);
  SL_CHECK_INT(sl_config_output_index(cfg, "energy"), 1);
  SL_CHECK_INT(sl_config_output_index(cfg, NULL), -1);
  sl_config_destroy(cfg);
}

static void test_defaults(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load(CONFIG_DATA_DIR "/minimal.yaml", &err);

  if (!cfg)
    fprintf(stderr, "  %s\n", err.message);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->experiment, "minimal");
  SL_CHECK_INT(cfg->n_inputs, 1);
  SL_CHECK_INT(cfg->n_outputs, 1);
  SL_CHECK_STR(cfg->inputs[0].type, "float");
  SL_CHECK(!cfg->inputs[0].has_default);
  SL_CHECK(!cfg->history.present);
  SL_CHECK(cfg->history.name == NULL);
  SL_CHECK_INT(cfg->history.checkpoints, 32);
  SL_CHECK_INT(cfg->simulator.argc, 1);
  SL_CHECK_INT(cfg->simulator.max_steps, 1000);
  SL_CHECK_NEAR(cfg->simulator.wall_s, 3600, 0);
  SL_CHECK_NEAR(cfg->simulator.step_delay, 0, 0);
  SL_CHECK_NEAR(cfg->simulator.term_grace_s, 2, 0);
  SL_CHECK_STR(cfg->policy.initial, "sobol");
  SL_CHECK_INT(cfg->policy.initial_n, 16);
  SL_CHECK_STR(cfg->policy.acquisition, "max_std");
  SL_CHECK(cfg->policy.objective == NULL);
  SL_CHECK_NEAR(cfg->policy.ucb_kappa, 2, 0);
  SL_CHECK_NEAR(cfg->policy.oversubscribe, 2, 0);
  SL_CHECK_INT(cfg->policy.batch, 2); /* = workers.slots */
  SL_CHECK_INT(cfg->policy.seed, 1);
  SL_CHECK_NEAR(cfg->policy.diversity, 0.1, 1e-15);
  SL_CHECK(!cfg->policy.speculative.enabled);
  SL_CHECK_NEAR(cfg->policy.speculative.min_fraction, 0.2, 1e-15);
  SL_CHECK_NEAR(cfg->policy.speculative.confidence, 0.02, 1e-15);
  SL_CHECK_NEAR(cfg->policy.speculative.surprise_p, 0.01, 1e-15);
  SL_CHECK_NEAR(cfg->policy.speculative.audit_fraction, 0.1, 1e-15);
  SL_CHECK_INT(cfg->budget.max_sims, 10);
  SL_CHECK_INT(cfg->budget.max_steps, 0);
  SL_CHECK_INT(cfg->learn.ensemble, 5);
  SL_CHECK_INT(cfg->learn.hidden, 64);
  SL_CHECK_INT(cfg->learn.layers, 2);
  SL_CHECK_INT(cfg->learn.epochs, 200);
  SL_CHECK_INT(cfg->learn.batch, 64);
  SL_CHECK_NEAR(cfg->learn.lr, 1e-3, 1e-18);
  SL_CHECK_INT(cfg->learn.retrain_every, 8);
  SL_CHECK_NEAR(cfg->learn.validation_fraction, 0.2, 1e-15);
  SL_CHECK_STR(cfg->learn.loss, "nll");
  SL_CHECK_INT(cfg->workers.simulate_workers, 1);
  SL_CHECK_INT(cfg->workers.slots, 2);
  SL_CHECK_STR(cfg->written.store, "sqlite:run/minimal.db");
  SL_CHECK_STR(cfg->store, "sqlite:" CONFIG_DATA_DIR "/run/minimal.db"); /* relative to the config file */
  SL_CHECK(cfg->broker == NULL);
  SL_CHECK(cfg->credentials_file == NULL);
  SL_CHECK_INT(cfg->n_calibration, 0);
  sl_config_destroy(cfg);
  sl_config_destroy(NULL);
}

/* The batch default follows workers.slots. */
static void test_batch_follows_slots(void)
{
  sl_error_t err;
  sl_config_t *cfg = load(HEAD TAIL "workers: {slots: 7}\n", &err);

  SL_REQUIRE(cfg);
  SL_CHECK_INT(cfg->policy.batch, 7);
  sl_config_destroy(cfg);
}

static void test_flow_style_and_string_command(void)
{
  const char *yaml = "{experiment: flow_1, inputs: [{name: a, value_range: [-1, 1e1], default: -0.5}],"
                     " outputs: [], simulator: {command: '  my-sim  --fast\t-n 3 ', max_steps: 10},"
                     " budget: {wall_s: 60}, policy: {speculative: {enabled: false}}}";
  sl_error_t err;
  sl_config_t *cfg = load(yaml, &err);

  if (!cfg)
    fprintf(stderr, "  %s\n", err.message);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->experiment, "flow_1");
  SL_CHECK_NEAR(cfg->inputs[0].lo, -1, 0);
  SL_CHECK_NEAR(cfg->inputs[0].hi, 10, 0);
  SL_CHECK_NEAR(cfg->inputs[0].default_value, -0.5, 0);
  SL_CHECK_INT(cfg->n_outputs, 0);
  SL_REQUIRE(cfg->simulator.argc == 4);
  SL_CHECK_STR(cfg->simulator.argv[0], "my-sim");
  SL_CHECK_STR(cfg->simulator.argv[1], "--fast");
  SL_CHECK_STR(cfg->simulator.argv[2], "-n");
  SL_CHECK_STR(cfg->simulator.argv[3], "3");
  SL_CHECK(cfg->simulator.argv[4] == NULL);
  SL_CHECK_NEAR(cfg->budget.wall_s, 60, 0);
  sl_config_destroy(cfg);
}

/* Synapse writes inputs/outputs as maps of id -> {name, ...} and calibrations with
 * alpha_guess/beta_guess; its database/mlflow sections are accepted and ignored. */
static void test_synapse_forms(void)
{
  const char *yaml = "experiment: bella\n"
                     "database: {host: x, port: 27017}\n"
                     "mlflow: {tracking_uri: 'https://x'}\n"
                     "inputs:\n"
                     "  in1: {name: laser_energy, value_range: [1, 2]}\n"
                     "  zeta: {value_range: [0, 1]}\n"
                     "outputs:\n"
                     "  out1: {name: charge}\n"
                     "simulation_calibration:\n"
                     "  charge: {name: q_sim, depends_on: charge, alpha_guess: 4, beta_guess: 0.5}\n"
                     TAIL;
  sl_error_t err;
  sl_config_t *cfg = load(yaml, &err);

  if (!cfg)
    fprintf(stderr, "  %s\n", err.message);
  SL_REQUIRE(cfg);
  SL_REQUIRE(cfg->n_inputs == 2);
  SL_CHECK_STR(cfg->inputs[0].name, "laser_energy");
  SL_CHECK_STR(cfg->inputs[1].name, "zeta"); /* name from the key */
  SL_CHECK_STR(cfg->outputs[0].name, "charge");
  SL_REQUIRE(cfg->n_calibration == 1);
  SL_CHECK_NEAR(cfg->calibration[0].alpha, 4, 0);
  SL_CHECK_NEAR(cfg->calibration[0].beta, 0.5, 0);
  sl_config_destroy(cfg);
}

static void test_unknown_key(void)
{
  EXPECT_ERR("experiment: x\ninptus:\n  - {name: a, value_range: [0, 1]}\n" TAIL, SL_CONFIG_E_UNKNOWN_KEY,
             "cfg.yaml:2:1: unknown key 'inptus' in top level (did you mean 'inputs'?)");
  EXPECT_ERR(HEAD TAIL "budgte: {}\n", SL_CONFIG_E_UNKNOWN_KEY,
             "cfg.yaml:6:1: unknown key 'budgte' in top level (did you mean 'budget'?)");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {max_sims: 5, max_simz: 3}\n", SL_CONFIG_E_UNKNOWN_KEY,
             "cfg.yaml:5:23: unknown key 'max_simz' in 'budget' (did you mean 'max_sims'?)");
  EXPECT_ERR(HEAD TAIL "zzzzzzzz: 1\n", SL_CONFIG_E_UNKNOWN_KEY, "cfg.yaml:6:1: unknown key 'zzzzzzzz' in top level");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, value_rnge: [0, 1]}\n" TAIL, SL_CONFIG_E_UNKNOWN_KEY,
             "cfg.yaml:3:15: unknown key 'value_rnge' in 'inputs[0]' (did you mean 'value_range'?)");
  EXPECT_ERR(HEAD TAIL "policy: {speculative: {enable: true}}\n", SL_CONFIG_E_UNKNOWN_KEY,
             "cfg.yaml:6:24: unknown key 'enable' in 'policy.speculative' (did you mean 'enabled'?)");
}

static void test_wrong_type(void)
{
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget:\n  max_sims: lots\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:6:13: field 'budget.max_sims': expected an integer, got 'lots'");
  /* integers must be integers */
  EXPECT_ERR(HEAD "simulator: {command: [s], max_steps: 1.5}\nbudget: {max_sims: 1}\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:4:38: field 'simulator.max_steps': expected an integer, got '1.5'");
  /* a quoted number is a string */
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {max_sims: '10'}\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:5:20: field 'budget.max_sims': expected an integer, got the quoted string '10'");
  /* floats accept integers; a list is not a number */
  EXPECT_ERR(HEAD TAIL "learn: {lr: [1]}\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:6:13: field 'learn.lr': expected a number, got a sequence");
  EXPECT_ERR(HEAD TAIL "policy: {speculative: {enabled: yes please}}\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:6:33: field 'policy.speculative.enabled': expected true or false, got 'yes please'");
  EXPECT_ERR(HEAD TAIL "policy: 3\n", SL_CONFIG_E_TYPE, "cfg.yaml:6:9: field 'policy': expected a mapping, got '3'");
  EXPECT_ERR("- a\n- b\n", SL_CONFIG_E_TYPE, "cfg.yaml:1:1: a config must be a mapping, got a sequence");
  EXPECT_ERR(HEAD "simulator: {command: {a: b}}\nbudget: {max_sims: 1}\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:4:22: field 'simulator.command': expected a list of strings or a string, got a mapping");
  EXPECT_ERR(HEAD "simulator: {command: [s, [x]]}\nbudget: {max_sims: 1}\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:4:26: field 'simulator.command[1]': expected a string, got a sequence");
  EXPECT_ERR(HEAD TAIL "workers: {slots: 0}\n", SL_CONFIG_E_RANGE,
             "cfg.yaml:6:18: field 'workers.slots': must be between 1 and 4096, got '0'");
  EXPECT_ERR(HEAD TAIL "learn: {validation_fraction: 1}\n", SL_CONFIG_E_RANGE,
             "cfg.yaml:6:30: field 'learn.validation_fraction': must be in [0, 1), got 1");
  EXPECT_ERR(HEAD TAIL "simulator2: 1\n", SL_CONFIG_E_UNKNOWN_KEY,
             "cfg.yaml:6:1: unknown key 'simulator2' in top level (did you mean 'simulator'?)");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {max_sims: 99999999999999999999}\n", SL_CONFIG_E_RANGE,
             "cfg.yaml:5:20: field 'budget.max_sims': must be between 0 and 9223372036854775807, "
             "got '99999999999999999999'");
}

static void test_missing(void)
{
  EXPECT_ERR("inputs:\n  - {name: a, value_range: [0, 1]}\n" TAIL, SL_CONFIG_E_MISSING,
             "cfg.yaml:1:1: missing required key 'experiment'");
  EXPECT_ERR("experiment: x\n" TAIL, SL_CONFIG_E_MISSING, "cfg.yaml:1:1: missing required key 'inputs'");
  EXPECT_ERR("experiment: x\ninputs: []\n" TAIL, SL_CONFIG_E_MISSING,
             "cfg.yaml:2:9: field 'inputs': at least one input is required");
  EXPECT_ERR(HEAD "budget: {max_sims: 5}\n", SL_CONFIG_E_MISSING, "cfg.yaml:1:1: missing required key 'simulator'");
  EXPECT_ERR(HEAD "simulator: {max_steps: 5}\nbudget: {max_sims: 5}\n", SL_CONFIG_E_MISSING,
             "cfg.yaml:4:12: field 'simulator': missing required key 'command'");
  EXPECT_ERR(HEAD "simulator: {command: []}\nbudget: {max_sims: 5}\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:4:22: field 'simulator.command': empty command");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\n", SL_CONFIG_E_MISSING,
             "cfg.yaml:1:1: missing required key 'budget' (at least one of max_sims, max_steps, wall_s, target_nrmse)");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {max_sims: 0, learn: 1}\n", SL_CONFIG_E_UNKNOWN_KEY,
             "cfg.yaml:5:23: unknown key 'learn' in 'budget'");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {max_sims: 0, wall_s: 0}\n", SL_CONFIG_E_MISSING,
             "cfg.yaml:5:9: field 'budget': set at least one limit among max_sims, max_steps, wall_s, target_nrmse");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a}\n" TAIL, SL_CONFIG_E_MISSING,
             "cfg.yaml:3:5: field 'inputs[0]': missing required key 'value_range'");
  EXPECT_ERR("experiment: t\ninputs:\n  - value_range: [0, 1]\n" TAIL, SL_CONFIG_E_MISSING,
             "cfg.yaml:3:5: field 'inputs[0]': missing required key 'name'");
  EXPECT_ERR(HEAD TAIL "history: {checkpoints: 8}\n", SL_CONFIG_E_MISSING,
             "cfg.yaml:6:10: field 'history': missing required key 'name'");
  EXPECT_ERR(HEAD TAIL "policy: {acquisition: ucb}\n", SL_CONFIG_E_MISSING,
             "cfg.yaml:6:9: field 'policy': acquisition 'ucb' needs an 'objective'");
  EXPECT_ERR("", SL_CONFIG_E_MISSING,
             "cfg.yaml:1:1: empty config (expected a mapping with experiment, inputs, simulator and budget)");
  EXPECT_ERR("# only a comment\n", SL_CONFIG_E_MISSING,
             "cfg.yaml:1:1: empty config (expected a mapping with experiment, inputs, simulator and budget)");
}

static void test_value_range(void)
{
  /* block style; the position is the one of the sequence, line 7 column 22 */
  EXPECT_ERR("experiment: t\n"
             "simulator: {command: [s]}\n"
             "budget: {max_sims: 5}\n"
             "inputs:\n"
             "  - name: zeta\n"
             "    default: 0.3\n"
             "    value_range:     [0.5, 0.1]\n",
             SL_CONFIG_E_RANGE,
             "cfg.yaml:7:22: field 'inputs[0].value_range': expected [low, high] with low < high, got [0.5, 0.1]");
  EXPECT_ERR("experiment: t\n"
             "simulator: {command: [s]}\n"
             "budget: {max_sims: 5}\n"
             "inputs:\n"
             "  - name: b\n"
             "    value_range: [0, 1]\n"
             "  - {name: zeta,\n"
             "     value_range: [0.5, 0.1]}\n",
             SL_CONFIG_E_RANGE,
             "cfg.yaml:8:19: field 'inputs[1].value_range': expected [low, high] with low < high, got [0.5, 0.1]");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: zeta, default: 0.1, value_range: [0.5, 0.1]}\n" TAIL,
             SL_CONFIG_E_RANGE,
             "cfg.yaml:3:45: field 'inputs[0].value_range': expected [low, high] with low < high, got [0.5, 0.1]");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, value_range: [2, 2]}\n" TAIL, SL_CONFIG_E_RANGE,
             "cfg.yaml:3:28: field 'inputs[0].value_range': expected [low, high] with low < high, got [2, 2]");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, value_range: [1]}\n" TAIL, SL_CONFIG_E_TYPE,
             "cfg.yaml:3:28: field 'inputs[0].value_range': expected [low, high], got a sequence of another length");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, value_range: []}\n" TAIL, SL_CONFIG_E_TYPE,
             "cfg.yaml:3:28: field 'inputs[0].value_range': expected [low, high], got a sequence of another length");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, value_range: [0, x]}\n" TAIL, SL_CONFIG_E_TYPE,
             "cfg.yaml:3:32: field 'inputs[0].value_range': expected a number, got 'x'");
  /* a default outside the range */
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, value_range: [0, 1], default: 1.5}\n" TAIL, SL_CONFIG_E_RANGE,
             "cfg.yaml:3:45: field 'inputs[0].default': default 1.5 is outside value_range [0, 1]");
  /* outputs may omit the range, but an inverted one is still refused */
  EXPECT_ERR(HEAD "outputs:\n  - {name: y, value_range: [3, -3]}\n" TAIL, SL_CONFIG_E_RANGE,
             "cfg.yaml:5:28: field 'outputs[0].value_range': expected [low, high] with low < high, got [3, -3]");
}

static void test_duplicates(void)
{
  EXPECT_ERR(HEAD "outputs:\n  - {name: a}\n" TAIL, SL_CONFIG_E_DUPLICATE,
             "cfg.yaml:5:12: field 'outputs[0].name': duplicate variable name 'a' (also inputs[0].name)");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, value_range: [0, 1]}\n  - {name: a, value_range: [0, 1]}\n" TAIL,
             SL_CONFIG_E_DUPLICATE,
             "cfg.yaml:4:12: field 'inputs[1].name': duplicate variable name 'a' (also inputs[0].name)");
  EXPECT_ERR(HEAD TAIL "history: {name: a}\n", SL_CONFIG_E_DUPLICATE,
             "cfg.yaml:6:17: field 'history.name': duplicate variable name 'a' (also inputs[0].name)");
  /* duplicate keys in a map, at the top level and nested */
  EXPECT_ERR(HEAD TAIL "experiment: u\n", SL_CONFIG_E_DUPLICATE,
             "cfg.yaml:6:1: duplicate key 'experiment' in top level");
  EXPECT_ERR(HEAD "simulator: {command: [s], max_steps: 3, max_steps: 4}\nbudget: {max_sims: 1}\n",
             SL_CONFIG_E_DUPLICATE, "cfg.yaml:4:41: duplicate key 'max_steps' in 'simulator'");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, name: b, value_range: [0, 1]}\n" TAIL, SL_CONFIG_E_DUPLICATE,
             "cfg.yaml:3:15: duplicate key 'name' in 'inputs[0]'");
  EXPECT_ERR(HEAD TAIL "mlflow: {a: 1, b: {c: 1, c: 2}}\n", SL_CONFIG_E_DUPLICATE,
             "cfg.yaml:6:26: duplicate key 'c' in 'mlflow.b'");
}

static void test_nonfinite(void)
{
  EXPECT_ERR(HEAD TAIL "learn: {lr: .nan}\n", SL_CONFIG_E_RANGE,
             "cfg.yaml:6:13: field 'learn.lr': expected a finite number, got '.nan'");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, value_range: [-.inf, 1]}\n" TAIL, SL_CONFIG_E_RANGE,
             "cfg.yaml:3:29: field 'inputs[0].value_range': expected a finite number, got '-.inf'");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {wall_s: .Inf}\n", SL_CONFIG_E_RANGE,
             "cfg.yaml:5:18: field 'budget.wall_s': expected a finite number, got '.Inf'");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {wall_s: 1e999}\n", SL_CONFIG_E_RANGE,
             "cfg.yaml:5:18: field 'budget.wall_s': expected a finite number, got '1e999'");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {wall_s: inf}\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:5:18: field 'budget.wall_s': expected a number, got 'inf'");
  EXPECT_ERR(HEAD "simulator: {command: [s]}\nbudget: {wall_s: 0x10}\n", SL_CONFIG_E_TYPE,
             "cfg.yaml:5:18: field 'budget.wall_s': expected a number, got '0x10'");
}

static void test_bad_names(void)
{
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: 1abc, value_range: [0, 1]}\n" TAIL, SL_CONFIG_E_VALUE,
             "cfg.yaml:3:12: field 'inputs[0].name': bad name '1abc' (letters, digits and '_', not starting with a "
             "digit, at most 63)");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a-b, value_range: [0, 1]}\n" TAIL, SL_CONFIG_E_VALUE,
             "cfg.yaml:3:12: field 'inputs[0].name': bad name 'a-b' (letters, digits and '_', not starting with a "
             "digit, at most 63)");
  EXPECT_ERR("experiment: two words\ninputs:\n  - {name: a, value_range: [0, 1]}\n" TAIL, SL_CONFIG_E_VALUE,
             "cfg.yaml:1:13: field 'experiment': bad campaign name 'two words' (letters, digits, '_' and '-', at "
             "most 64)");
  {
    /* 63 characters are fine, 64 are not */
    char name[65], yaml[512];
    sl_error_t err;
    sl_config_t *cfg;

    memset(name, 'n', 63);
    name[63] = '\0';
    snprintf(yaml, sizeof yaml, "experiment: t\ninputs:\n  - {name: %s, value_range: [0, 1]}\n" TAIL, name);
    cfg = load(yaml, &err);
    SL_CHECK(cfg != NULL);
    sl_config_destroy(cfg);
    name[63] = 'n';
    name[64] = '\0';
    snprintf(yaml, sizeof yaml, "experiment: t\ninputs:\n  - {name: %s, value_range: [0, 1]}\n" TAIL, name);
    cfg = load(yaml, &err);
    SL_CHECK(cfg == NULL);
    SL_CHECK_INT(err.code, SL_CONFIG_E_VALUE);
    sl_config_destroy(cfg);
  }
}

static void test_enums(void)
{
  EXPECT_ERR(HEAD TAIL "policy: {initial: random}\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:6:19: field 'policy.initial': expected one of sobol, lhs, grid, got 'random'");
  EXPECT_ERR(HEAD TAIL "policy:\n  acquisition: ei\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:7:16: field 'policy.acquisition': expected one of max_std, ucb, none, got 'ei'");
  EXPECT_ERR(HEAD TAIL "learn: {loss: mae}\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:6:15: field 'learn.loss': expected one of nll, mse, got 'mae'");
  EXPECT_ERR("experiment: t\ninputs:\n  - {name: a, type: int, value_range: [0, 1]}\n" TAIL, SL_CONFIG_E_VALUE,
             "cfg.yaml:3:21: field 'inputs[0].type': expected one of float, got 'int'");
  EXPECT_ERR(HEAD TAIL "policy: {acquisition: ucb, objective: nope}\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:6:39: field 'policy.objective': 'nope' is not one of the outputs");
  EXPECT_ERR(HEAD TAIL "store: postgres://x\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:6:8: field 'store': expected 'sqlite:PATH' or a mongodb:// url");
  EXPECT_ERR(HEAD TAIL "broker: amqp://guest:guest@host/\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:6:9: field 'broker': credentials do not belong in the config; use credentials_file or the "
             "environment");
  EXPECT_ERR(HEAD TAIL "simulation_calibration: {nope: {alpha: 1}}\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:6:26: field 'simulation_calibration.nope': 'nope' is not an input or output");
  EXPECT_ERR(HEAD TAIL "simulation_calibration: {a: {alpha: 0}}\n", SL_CONFIG_E_RANGE,
             "cfg.yaml:6:37: field 'simulation_calibration.a.alpha': must not be 0 (experimental = simulation / "
             "alpha + beta)");
}

static void test_anchors_aliases(void)
{
  const char *laughs = "experiment: t\n"
                       "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
                       "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n";

  EXPECT_ERR(laughs, SL_CONFIG_E_VALUE, "cfg.yaml:2:4: yaml anchors are not allowed in a config ('&a')");
  EXPECT_ERR("experiment: t\ninputs:\n  - &x {name: a, value_range: [0, 1]}\n" TAIL, SL_CONFIG_E_VALUE,
             "cfg.yaml:3:5: yaml anchors are not allowed in a config ('&x')");
  EXPECT_ERR("experiment: *t\n", SL_CONFIG_E_VALUE, "cfg.yaml:1:13: yaml aliases are not allowed in a config ('*t')");
  EXPECT_ERR(HEAD TAIL "store: !custom sqlite:x\n", SL_CONFIG_E_VALUE,
             "cfg.yaml:6:8: yaml tag '!custom' is not allowed in a config");
  /* core-schema tags are fine: !!str makes a plain scalar a string */
  {
    sl_error_t err;
    sl_config_t *cfg = load(HEAD TAIL "store: !!str sqlite:x\n", &err);

    SL_CHECK(cfg != NULL);
    if (cfg)
      SL_CHECK_STR(cfg->store, "sqlite:x");
    sl_config_destroy(cfg);
  }
}

static void test_documents_and_size(void)
{
  sl_error_t err;
  sl_config_t *cfg;
  size_t big = ((size_t)1 << 20) + 1, n;
  char *text, path[] = "/tmp/sl_config_big_XXXXXX";
  FILE *f;
  int fd;

  EXPECT_ERR(HEAD TAIL "---\nexperiment: u\n", SL_CONFIG_E_SYNTAX,
             "cfg.yaml:6:1: more than one yaml document (a config is one document)");
  /* an explicit single document is fine */
  cfg = load("---\n" HEAD TAIL "...\n", &err);
  SL_CHECK(cfg != NULL);
  sl_config_destroy(cfg);

  text = sl_malloc(big + 1);
  memcpy(text, HEAD TAIL, strlen(HEAD TAIL));
  n = strlen(HEAD TAIL);
  memset(text + n, '#', big - n);
  text[n] = '#';
  text[big] = '\0';
  cfg = sl_config_load_string(text, big, "big.yaml", &err);
  SL_CHECK(cfg == NULL);
  SL_CHECK_INT(err.code, SL_CONFIG_E_RANGE);
  SL_CHECK_STR(err.message, "big.yaml:1:1: config larger than 1048576 bytes");
  /* one byte less is loadable (the rest is a comment) */
  cfg = sl_config_load_string(text, big - 1, "big.yaml", &err);
  SL_CHECK(cfg != NULL);
  sl_config_destroy(cfg);

  fd = mkstemp(path);
  SL_REQUIRE(fd >= 0);
  f = fdopen(fd, "w");
  SL_REQUIRE(f);
  SL_CHECK(fwrite(text, 1, big, f) == big);
  fclose(f);
  cfg = sl_config_load(path, &err);
  SL_CHECK(cfg == NULL);
  SL_CHECK_INT(err.code, SL_CONFIG_E_RANGE);
  SL_CHECK(strstr(err.message, "larger than 1048576 bytes") != NULL);
  unlink(path);
  free(text);

  cfg = sl_config_load("/nonexistent/dir/cfg.yaml", &err);
  SL_CHECK(cfg == NULL);
  SL_CHECK_INT(err.domain, SL_ERR_CONFIG);
  SL_CHECK_INT(err.code, SL_CONFIG_E_IO);
  SL_CHECK_STR(err.message, "/nonexistent/dir/cfg.yaml: cannot read: No such file or directory");
}

static void test_syntax(void)
{
  EXPECT_ERR_PREFIX("experiment: t\ninputs: [a, b\nbudget: 1\n", SL_CONFIG_E_SYNTAX,
                    "cfg.yaml:3:7: yaml syntax error: did not find expected ',' or ']'");
  EXPECT_ERR_PREFIX("experiment: t\n  inputs: 1\n", SL_CONFIG_E_SYNTAX,
                    "cfg.yaml:2:9: yaml syntax error: mapping values are not allowed in this context");
  EXPECT_ERR_PREFIX("experiment: t\n\tinputs: 1\n", SL_CONFIG_E_SYNTAX, "cfg.yaml:2:1: yaml syntax error: ");
  EXPECT_ERR_PREFIX("experiment: 'unterminated\n", SL_CONFIG_E_SYNTAX, "cfg.yaml:2:1: yaml syntax error: ");
  /* invalid UTF-8 is a reader error, positioned by its byte offset */
  EXPECT_ERR_PREFIX("experiment: t\nx: \xff\n", SL_CONFIG_E_SYNTAX, "cfg.yaml:2:4: yaml syntax error: invalid");
  /* embedded NUL */
  {
    static const char nul[] = "experiment: t\0x\n";
    sl_error_t err;
    sl_config_t *cfg = sl_config_load_string(nul, sizeof nul - 1, "cfg.yaml", &err);

    SL_CHECK(cfg == NULL);
    SL_CHECK_INT(err.code, SL_CONFIG_E_SYNTAX);
    SL_CHECK(!strncmp(err.message, "cfg.yaml:1:14: yaml syntax error: ", 34));
  }
}

static void test_deep_nesting(void)
{
  char yaml[600];
  size_t i, o = 0;

  o += (size_t)snprintf(yaml, sizeof yaml, "experiment: t\nmlflow: ");
  for (i = 0; i < 200; i++)
    yaml[o++] = '[';
  for (i = 0; i < 200; i++)
    yaml[o++] = ']';
  yaml[o++] = '\n';
  yaml[o] = '\0';
  EXPECT_ERR(yaml, SL_CONFIG_E_RANGE, "cfg.yaml:2:72: nesting deeper than 64 levels");
}

static void test_broker_url(void)
{
  sl_error_t err;
  sl_config_t *cfg = load(HEAD TAIL "broker: amqp://rabbit:5672/vh\n", &err);

  SL_REQUIRE(cfg);
  unsetenv("SPECLINE_AMQP_URL");
  SL_CHECK_STR(sl_config_broker_url(cfg), "amqp://rabbit:5672/vh");
  setenv("SPECLINE_AMQP_URL", "amqp://other/", 1);
  SL_CHECK_STR(sl_config_broker_url(cfg), "amqp://other/");
  unsetenv("SPECLINE_AMQP_URL");
  sl_config_destroy(cfg);
  cfg = load(HEAD TAIL, &err);
  SL_REQUIRE(cfg);
  SL_CHECK(sl_config_broker_url(cfg) == NULL);
  sl_config_destroy(cfg);
  /* a '@' after the host part (in the vhost) is not a credential */
  cfg = load(HEAD TAIL "broker: amqp://rabbit/a@b\n", &err);
  SL_CHECK(cfg != NULL);
  sl_config_destroy(cfg);
}

static void test_dump(void)
{
  sl_error_t err;
  sl_config_t *cfg = sl_config_load(CONFIG_DATA_DIR "/full.yaml", &err);
  json_error_t jerr;
  json_t *j;
  char *text;

  SL_REQUIRE(cfg);
  text = sl_config_dump(cfg);
  sl_config_destroy(cfg);
  SL_REQUIRE(text);
  j = json_loads(text, 0, &jerr);
  free(text);
  SL_REQUIRE(j);
  SL_CHECK_STR(json_string_value(json_object_get(j, "experiment")), "damped-oscillator");
  SL_CHECK_INT(json_array_size(json_object_get(j, "inputs")), 2);
  SL_CHECK_STR(json_string_value(json_array_get(json_object_get(json_object_get(j, "simulator"), "command"), 1)),
               "--dt");
  SL_CHECK_INT(json_integer_value(json_object_get(json_object_get(j, "budget"), "max_steps")), 2000000);
  SL_CHECK(json_is_true(json_object_get(json_object_get(json_object_get(j, "policy"), "speculative"), "enabled")));
  SL_CHECK_NEAR(json_number_value(json_object_get(json_object_get(json_object_get(j, "simulation_calibration"),
                                                                  "amplitude"),
                                                  "beta")),
                -0.5, 0);
  json_decref(j);
  SL_CHECK(sl_config_dump(NULL) == NULL);
}

/* Every prefix of a valid file either loads or fails cleanly with a config error naming
 * the file; run under -DSPECLINE_SANITIZE=address this also catches leaks and overflows. */
static void test_truncated_prefixes(void)
{
  size_t len = 0, i, loaded = 0, failed = 0;
  char *text = sl_read_file(CONFIG_DATA_DIR "/full.yaml", 1 << 20, &len);

  SL_REQUIRE(text);
  for (i = 0; i <= len; i++) {
    sl_error_t err;
    char *copy = sl_malloc(i ? i : 1); /* exact size, no terminator: catches over-reads */
    sl_config_t *cfg;

    memcpy(copy, text, i);
    sl_error_clear(&err);
    cfg = sl_config_load_string(copy, i, "full.yaml", &err);
    if (cfg) {
      loaded++;
      SL_CHECK(cfg->experiment && cfg->n_inputs >= 1 && cfg->simulator.argc >= 1);
      sl_config_destroy(cfg);
    } else {
      failed++;
      SL_CHECKF(err.domain == SL_ERR_CONFIG && err.code >= SL_CONFIG_E_IO && err.code <= SL_CONFIG_E_VALUE &&
                    !strncmp(err.message, "full.yaml:", 10),
                "prefix %zu: domain %d code %d '%s'", i, err.domain, err.code, err.message);
    }
    free(copy);
  }
  free(text);
  /* the full text loads; most short prefixes do not */
  SL_CHECK(loaded >= 1);
  SL_CHECK(failed > len / 2);
}

/* Paths are relative to the config file, whatever the current directory: the store, the
 * credentials file, a simulator given with a '/', and arguments naming files beside the
 * config; a bare program name, options, absent files and absolute paths stay as written. */
static void test_relative_paths(void)
{
  static const char yaml[] = "experiment: rel\n"
                             "inputs:\n  - {name: a, value_range: [0, 1]}\n"
                             "simulator: {command: [\"python3\", \"decay.py\", \"--n\", \"3\", \"out.dat\", "
                             "\"/bin/true\", \"./data/table.csv\"]}\n"
                             "budget: {max_sims: 5}\n"
                             "store: sqlite:run/rel.db\n"
                             "credentials_file: secrets/amqp\n";
  char tmpl[] = "/tmp/sl-config-rel-XXXXXX", cwd[4096], *dir, *sub, *path, *s;
  sl_config_t *cfg;
  sl_error_t err;
  FILE *f;

  dir = mkdtemp(tmpl);
  SL_REQUIRE(dir && getcwd(cwd, sizeof cwd));
  sub = sl_asprintf("%s/c", dir);
  SL_REQUIRE(mkdir(sub, 0700) == 0);
  path = sl_asprintf("%s/data", sub);
  SL_REQUIRE(mkdir(path, 0700) == 0);
  free(path);
  path = sl_asprintf("%s/decay.py", sub);
  f = fopen(path, "w");
  SL_REQUIRE(f);
  fclose(f);
  free(path);
  path = sl_asprintf("%s/data/table.csv", sub);
  f = fopen(path, "w");
  SL_REQUIRE(f);
  fclose(f);
  free(path);
  path = sl_asprintf("%s/config.yaml", sub);
  f = fopen(path, "w");
  SL_REQUIRE(f);
  fputs(yaml, f);
  fclose(f);
  free(path);

  SL_REQUIRE(chdir(dir) == 0); /* load as "c/config.yaml" from the parent */
  cfg = sl_config_load("./c/config.yaml", &err);
  SL_REQUIRE(chdir(cwd) == 0);
  if (!cfg)
    fprintf(stderr, "  %s\n", err.message);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->dir, sub);
  s = sl_asprintf("sqlite:%s/run/rel.db", sub);
  SL_CHECK_STR(cfg->store, s);
  free(s);
  s = sl_asprintf("%s/secrets/amqp", sub);
  SL_CHECK_STR(cfg->credentials_file, s);
  free(s);
  SL_CHECK_STR(cfg->simulator.argv[0], "python3");
  s = sl_asprintf("%s/decay.py", sub);
  SL_CHECK_STR(cfg->simulator.argv[1], s);
  free(s);
  SL_CHECK_STR(cfg->simulator.argv[2], "--n");
  SL_CHECK_STR(cfg->simulator.argv[3], "3");
  SL_CHECK_STR(cfg->simulator.argv[4], "out.dat");
  SL_CHECK_STR(cfg->simulator.argv[5], "/bin/true");
  s = sl_asprintf("%s/data/table.csv", sub);
  SL_CHECK_STR(cfg->simulator.argv[6], s);
  free(s);
  SL_CHECK(cfg->simulator.argv[7] == NULL);
  SL_CHECK_STR(cfg->written.store, "sqlite:run/rel.db");
  SL_CHECK_STR(cfg->written.simulator_argv[1], "decay.py");
  SL_CHECK_STR(cfg->written.credentials_file, "secrets/amqp");
  s = sl_config_dump(cfg);
  SL_CHECK(s && strstr(s, "\"store\": \"sqlite:run/rel.db\"") && strstr(s, "\"resolved\""));
  free(s);
  sl_config_destroy(cfg);

  /* a simulator named with a '/' is relative to the config too */
  cfg = load("experiment: t\ninputs:\n  - {name: a, value_range: [0, 1]}\n"
             "simulator: {command: [\"./bin/sim\"]}\nbudget: {max_sims: 5}\n", &err);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->simulator.argv[0], "./bin/sim"); /* from a string: nothing to resolve against */
  SL_CHECK(cfg->dir == NULL);
  sl_config_destroy(cfg);
  path = sl_asprintf("%s/config.yaml", sub);
  f = fopen(path, "w");
  SL_REQUIRE(f);
  fputs("experiment: t\ninputs:\n  - {name: a, value_range: [0, 1]}\n"
        "simulator: {command: [\"./bin/sim\"]}\nbudget: {max_sims: 5}\nstore: sqlite:///abs.db\n", f);
  fclose(f);
  cfg = sl_config_load(path, &err);
  SL_REQUIRE(cfg);
  s = sl_asprintf("%s/bin/sim", sub);
  SL_CHECK_STR(cfg->simulator.argv[0], s);
  free(s);
  SL_CHECK_STR(cfg->store, "sqlite:///abs.db");
  sl_config_destroy(cfg);
  free(path);

  s = sl_asprintf("rm -rf '%s'", dir);
  SL_CHECK_INT(system(s), 0);
  free(s);
  free(sub);
}

/* `calibration: true` marks an input a shot may not know (docs/transfer.md); outputs cannot
 * carry it, and it must be a boolean. */
static void test_calibration_input(void)
{
  sl_error_t err;
  sl_config_t *cfg = load("experiment: t\ninputs:\n  - {name: a, value_range: [0, 1]}\n"
                          "  - {name: K, value_range: [0, 1], calibration: true}\n" TAIL,
                          &err);
  SL_CHECKF(cfg != NULL, "%s", cfg ? "" : err.message);
  if (cfg) {
    SL_CHECK(!cfg->inputs[0].calibration && cfg->inputs[1].calibration);
    sl_config_destroy(cfg);
  }
  EXPECT_ERR_PREFIX("experiment: t\ninputs:\n  - {name: a, value_range: [0, 1], calibration: yes}\n" TAIL,
                    SL_CONFIG_E_TYPE, "cfg.yaml:3:");
  EXPECT_ERR_PREFIX(HEAD "outputs:\n  - {name: y, calibration: true}\n" TAIL, SL_CONFIG_E_VALUE, "cfg.yaml:5:");
}

SL_TEST_MAIN(SL_T(test_calibration_input), SL_T(test_full), SL_T(test_defaults), SL_T(test_batch_follows_slots),
             SL_T(test_flow_style_and_string_command), SL_T(test_synapse_forms), SL_T(test_unknown_key),
             SL_T(test_wrong_type), SL_T(test_missing), SL_T(test_value_range), SL_T(test_duplicates),
             SL_T(test_nonfinite), SL_T(test_bad_names), SL_T(test_enums), SL_T(test_anchors_aliases),
             SL_T(test_documents_and_size), SL_T(test_syntax), SL_T(test_deep_nesting), SL_T(test_broker_url),
             SL_T(test_dump), SL_T(test_truncated_prefixes), SL_T(test_relative_paths))
