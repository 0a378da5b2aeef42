/* `specline`: the one command of the line. Dispatches to the subcommands in cmd_*.c; a
 * subcommand whose module is not part of this build says so. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "specline/log.h"

#define WEAK __attribute__((weak))
WEAK int sl_cmd_broker(int argc, char **argv);
WEAK int sl_cmd_run(int argc, char **argv);
WEAK int sl_cmd_results(int argc, char **argv);
WEAK int sl_cmd_sim(int argc, char **argv);
WEAK int sl_cmd_config(int argc, char **argv);
WEAK int sl_cmd_predict(int argc, char **argv);
WEAK int sl_cmd_report(int argc, char **argv);
WEAK int sl_cmd_shot(int argc, char **argv);
WEAK int sl_cmd_top(int argc, char **argv);
WEAK int sl_cmd_dashboard(int argc, char **argv);

static const struct {
  const char *name;
  int (*fn)(int, char **);
  const char *help;
} commands[] = {
    {"run", sl_cmd_run,
     "run CONFIG [--fresh [--yes]]  run a campaign end to end (starts a local broker if none);\n"
     "                        run again to resume it"},
    {"results", sl_cmd_results,
     "results CONFIG [--csv|--json|--jsonl] [--columns A,B] [--models]\n"
     "                        print the stored points (reasons, histories) or models"},
    {"sim", sl_cmd_sim,
     "sim list CONFIG       the simulations in flight\n"
     "  sim terminate CONFIG SAMPLE_ID  end one running simulation"},
    {"predict", sl_cmd_predict,
     "predict CONFIG --input name=value ... [--offline]  ask the surrogate (the predict worker,\n"
     "                        else the newest model in the store)"},
    {"report", sl_cmd_report, "report CONFIG         write report.html"},
    {"shot", sl_cmd_shot,
     "shot submit CONFIG FILE  feed experimental shots to the store (queued until a store worker runs)\n"
     "  shot suggest CONFIG     where to shoot next"},
    {"top", sl_cmd_top, "top CONFIG [--once] [--json]  live view of a campaign"},
    {"dashboard", sl_cmd_dashboard, "dashboard CONFIG [--listen 127.0.0.1:8080]\n"
     "                        a live page: progress, the model, the operator's view"},
    {"broker", sl_cmd_broker,
     "broker init|status CONFIG  declare a campaign's queues; their depths and consumers\n"
     "  broker start|stop --dir DIR  a local RabbitMQ (or --nodes N: a local cluster)\n"
     "  broker ctl --dir DIR ARGS...  rabbitmqctl against a local broker"},
    {"config", sl_cmd_config, "config check CONFIG   validate a config.yaml and find its simulator"},
};

static void usage(FILE *f)
{
  size_t i;

  fprintf(f, "usage: specline COMMAND [ARGS]\n\n"
             "specline runs speculative-sampling campaigns: simulations, a surrogate model and\n"
             "experiments joined by RabbitMQ queues.\n\ncommands:\n");
  for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (commands[i].fn)
      fprintf(f, "  %s\n", commands[i].help);
  fprintf(f, "\n`specline COMMAND --help` for details; SPECLINE_LOG=debug for more output.\n"
             "Paths in a config are relative to the config file (docs/config.md); the broker is\n"
             "--broker-dir's, else SPECLINE_AMQP_URL, else the config's (docs/broker.md).\n"
             "Bash completion: source the installed share/bash-completion/completions/specline.\n"
             "version " SPECLINE_VERSION " (--version)\n");
}

int main(int argc, char **argv)
{
  size_t i;

  sl_log_init("specline");
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  if (!strcmp(argv[1], "--version")) {
    printf("specline " SPECLINE_VERSION "\n");
    return 0;
  }
  for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
    if (strcmp(argv[1], commands[i].name) != 0)
      continue;
    if (!commands[i].fn) {
      fprintf(stderr, "specline: command '%s' is not part of this build\n", argv[1]);
      return 2;
    }
    return commands[i].fn(argc - 1, argv + 1);
  }
  fprintf(stderr, "specline: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
