/* The subcommands of `specline`; each lives in cli/cmd_<name>.c and returns an exit code
 * (0 ok, 1 failure, 2 usage). */
#ifndef SPECLINE_CLI_COMMANDS_H
#define SPECLINE_CLI_COMMANDS_H

int sl_cmd_broker(int argc, char **argv);  /* broker init|status|start|stop */
int sl_cmd_run(int argc, char **argv);     /* run CONFIG */
int sl_cmd_results(int argc, char **argv); /* results CONFIG [--csv] */
int sl_cmd_sim(int argc, char **argv);     /* sim terminate CONFIG SAMPLE_ID */
int sl_cmd_config(int argc, char **argv);  /* config check CONFIG */
int sl_cmd_predict(int argc, char **argv); /* predict CONFIG --input name=value ... */
int sl_cmd_report(int argc, char **argv);  /* report CONFIG */
int sl_cmd_shot(int argc, char **argv);    /* shot submit CONFIG FILE | shot suggest CONFIG */
int sl__cmd_shot_suggest(int argc, char **argv); /* cmd_shot_suggest.c; argv[0] = "suggest" */
int sl_cmd_top(int argc, char **argv);     /* top CONFIG */
int sl_cmd_dashboard(int argc, char **argv); /* dashboard CONFIG [--listen HOST:PORT] */

/* `broker status`, in cmd_broker_status.c; argv[0] is "status". */
int sl__cmd_broker_status(int argc, char **argv);

#endif
