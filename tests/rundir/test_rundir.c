/* Unit tests of run directories: template rendering (values, spaces, escapes, errors with
 * line:column), the config keys and their errors, the hostile workdirs refused, and
 * templates applied into a directory from a config loaded from a file. No servers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sltest.h"
#include "specline/config.h"
#include "specline/template.h"
#include "specline/util.h"

#define HEAD                                                                                                 \
  "experiment: t\ninputs:\n  - {name: a, value_range: [0, 1]}\n  - {name: b2, value_range: [0, 1]}\n"

static bool lookup(void *ud, const char *name, sl_buf_t *out)
{
  (void)ud;
  if (!strcmp(name, "a"))
    sl_buf_printf(out, "0.25");
  else if (!strcmp(name, "b2"))
    sl_buf_printf(out, "-3");
  else if (!strcmp(name, "sample_id"))
    sl_buf_printf(out, "s-1");
  else
    return false;
  return true;
}

/* Renders text; returns the output (static) or the error message. */
static const char *render(const char *text, bool *ok)
{
  static char res[512];
  sl_buf_t b;
  sl_error_t err;

  sl_buf_init(&b);
  *ok = sl_template_render(text, strlen(text), "deck.tmpl", lookup, NULL, &b, &err);
  snprintf(res, sizeof res, "%.*s", *ok ? (int)b.len : (int)strlen(err.message), *ok ? b.data : err.message);
  sl_buf_release(&b);
  return res;
}

static void test_template_render(void)
{
  bool ok;

  SL_CHECK_STR(render("a={{a}} b={{ b2 }} id={{\tsample_id }}\n", &ok), "a=0.25 b=-3 id=s-1\n");
  SL_CHECK(ok);
  SL_CHECK_STR(render("no placeholders { } }} {", &ok), "no placeholders { } }} {");
  SL_CHECK(ok);
  SL_CHECK_STR(render("lit \\{{a}} and {{a}}", &ok), "lit {{a}} and 0.25");
  SL_CHECK(ok);
  SL_CHECK_STR(render("", &ok), "");
  SL_CHECK(ok);
  SL_CHECK_STR(render("x\n  {{nope}}", &ok), "deck.tmpl:2:3: unknown placeholder '{{nope}}' (not an input, "
                                             "sample_id, campaign, run_dir or max_steps)");
  SL_CHECK(!ok);
  SL_CHECK_STR(render("x = {{a + 1}}", &ok),
               "deck.tmpl:1:5: '{{' must start a placeholder '{{name}}' (write '\\{{' for a literal '{{')");
  SL_CHECK(!ok);
  SL_CHECK_STR(render("{{a}", &ok),
               "deck.tmpl:1:1: '{{' must start a placeholder '{{name}}' (write '\\{{' for a literal '{{')");
  SL_CHECK(!ok);
  SL_CHECK_STR(render("$(rm -rf /) {{ $HOME }}", &ok),
               "deck.tmpl:1:13: '{{' must start a placeholder '{{name}}' (write '\\{{' for a literal '{{')");
  SL_CHECK(!ok);
}

/* Templates write numbers the shortest exact way, whole ones without a fraction. */
static void test_template_numbers(void)
{
  const double v[] = {0.1, 1e-5, 3, -2.5, 1e22};
  const char *want[] = {"0.1", "1e-05", "3", "-2.5", "1e+22"};
  size_t i;

  for (i = 0; i < sizeof v / sizeof v[0]; i++) {
    sl_buf_t b;
    sl_buf_init(&b);
    sl_template_put_number(&b, v[i]);
    sl_buf_append(&b, "", 1);
    SL_CHECK_STR(b.data, want[i]);
    sl_buf_release(&b);
  }
}

static sl_config_t *load(const char *sim, sl_error_t *err)
{
  char *yaml = sl_asprintf(HEAD "simulator:\n  command: [sim]\n%sbudget: {max_sims: 5}\n", sim);
  sl_config_t *cfg = sl_config_load_string(yaml, strlen(yaml), "cfg.yaml", err);

  free(yaml);
  return cfg;
}

static void expect_err(const char *sim, const char *msg)
{
  sl_error_t err;
  sl_config_t *cfg = load(sim, &err);

  SL_CHECKF(!cfg, "accepted: %s", sim);
  sl_config_destroy(cfg);
  if (!cfg)
    SL_CHECK_STR(err.message, msg);
}

static void test_config_keys(void)
{
  sl_error_t err;
  sl_config_t *cfg = load("", &err);

  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->simulator.workdir, "run/runs");
  SL_CHECK_INT(cfg->simulator.keep, SL_KEEP_NEVER);
  SL_CHECK_INT(cfg->simulator.n_templates, 0);
  SL_CHECK_INT(cfg->simulator.n_outfiles, 0);
  sl_config_destroy(cfg);
  cfg = load("  workdir: scratch/runs\n  keep: failed\n  templates: [deck.in.tmpl, common]\n"
             "  outputs:\n    - out.dat\n    - {file: sub/log.txt, store: path}\n"
             "    - {file: r.csv, name: table, max_bytes: 100, optional: true}\n",
             &err);
  SL_REQUIRE(cfg);
  SL_CHECK_STR(cfg->simulator.workdir, "scratch/runs");
  SL_CHECK_INT(cfg->simulator.keep, SL_KEEP_FAILED);
  SL_REQUIRE(cfg->simulator.n_templates == 2);
  SL_CHECK_STR(cfg->simulator.templates[1], "common");
  SL_REQUIRE(cfg->simulator.n_outfiles == 3);
  SL_CHECK_STR(cfg->simulator.outfiles[0].name, "out.dat");
  SL_CHECK_INT(cfg->simulator.outfiles[0].max_bytes, 65536);
  SL_CHECK(!cfg->simulator.outfiles[0].store_path);
  SL_CHECK_STR(cfg->simulator.outfiles[1].name, "sub_log.txt");
  SL_CHECK(cfg->simulator.outfiles[1].store_path);
  SL_CHECK_STR(cfg->simulator.outfiles[2].name, "table");
  SL_CHECK_INT(cfg->simulator.outfiles[2].max_bytes, 100);
  SL_CHECK(cfg->simulator.outfiles[2].optional);
  {
    char *dump = sl_config_dump(cfg);
    SL_CHECK(strstr(dump, "\"keep\": \"failed\"") != NULL);
    SL_CHECK(strstr(dump, "\"workdir\": \"scratch/runs\"") != NULL);
    free(dump);
  }
  sl_config_destroy(cfg);
  cfg = load("  workdir: none\n", &err);
  SL_REQUIRE(cfg);
  SL_CHECK(cfg->simulator.workdir == NULL);
  sl_config_destroy(cfg);
  cfg = load("  keep: true\n", &err);
  SL_REQUIRE(cfg);
  SL_CHECK_INT(cfg->simulator.keep, SL_KEEP_ALWAYS);
  sl_config_destroy(cfg);
}

static void test_config_errors(void)
{
  expect_err(
      "  workdir: ../elsewhere\n",
      "cfg.yaml:7:12: field 'simulator.workdir': '..' is not allowed in '../elsewhere' (run directories stay "
      "below it)");
  expect_err(
      "  workdir: runs/../..\n",
      "cfg.yaml:7:12: field 'simulator.workdir': '..' is not allowed in 'runs/../..' (run directories stay "
      "below it)");
  expect_err("  workdir: //\n", "cfg.yaml:7:12: field 'simulator.workdir': '//' is the root directory");
  expect_err("  workdir: ''\n", "cfg.yaml:7:12: field 'simulator.workdir': empty path");
  expect_err(
      "  workdir: none\n  outputs: [out.dat]\n",
      "cfg.yaml:7:12: field 'simulator.workdir': 'none' leaves no run directory for simulator.outputs");
  expect_err("  keep: sometimes\n",
             "cfg.yaml:7:9: field 'simulator.keep': expected true, false or failed, got 'sometimes'");
  expect_err(
      "  outputs: [../x.dat]\n",
      "cfg.yaml:7:13: field 'simulator.outputs[0]': '../x.dat' must be a path inside the run directory "
      "(relative, no '..')");
  expect_err(
      "  outputs: [/etc/passwd]\n",
      "cfg.yaml:7:13: field 'simulator.outputs[0]': '/etc/passwd' must be a path inside the run directory "
      "(relative, no '..')");
  expect_err("  outputs: [{file: a.dat, store: both}]\n",
             "cfg.yaml:7:34: field 'simulator.outputs[0].store': expected one of content, path, got 'both'");
  expect_err(
      "  outputs: [{file: a.dat, max_bytes: 10000000}]\n",
      "cfg.yaml:7:38: field 'simulator.outputs[0].max_bytes': must be between 1 and 524288, got '10000000'");
  expect_err("  outputs: [a/x.dat, a_x.dat]\n",
             "cfg.yaml:7:22: field 'simulator.outputs[1]': name 'a_x.dat' is used twice (give one a 'name')");
  expect_err("  outputs: [{file: a, name: 'no spaces'}]\n",
             "cfg.yaml:7:29: field 'simulator.outputs[0].name': bad name 'no spaces' (letters, digits, '_', "
             "'.', '-', "
             "at most 63)");
}

static void write_file(const char *path, const char *text, mode_t mode)
{
  FILE *f = fopen(path, "w");

  fputs(text, f);
  fclose(f);
  chmod(path, mode);
}

static void test_templates_apply(void)
{
  char tmp[] = "/tmp/sl-rundir-XXXXXX", *p, *text, *cfgpath, *dest;
  sl_config_t *cfg;
  sl_error_t err;
  struct stat st;
  size_t len;

  SL_REQUIRE(mkdtemp(tmp));
  p = sl_asprintf("%s/tmpl", tmp);
  mkdir(p, 0755);
  free(p);
  p = sl_asprintf("%s/tmpl/sub", tmp);
  mkdir(p, 0755);
  free(p);
  p = sl_asprintf("%s/deck.in.tmpl", tmp);
  write_file(p, "a = {{a}}\nid = {{sample_id}}\n", 0644);
  free(p);
  p = sl_asprintf("%s/tmpl/run.sh", tmp);
  write_file(p, "#!/bin/sh\n", 0755);
  free(p);
  p = sl_asprintf("%s/tmpl/sub/x.tmpl", tmp);
  write_file(p, "b={{b2}}", 0600);
  free(p);
  cfgpath = sl_asprintf("%s/config.yaml", tmp);
  write_file(cfgpath,
             HEAD "simulator: {command: [sim], templates: [deck.in.tmpl, tmpl]}\nbudget: {max_sims: 5}\n",
             0644);
  cfg = sl_config_load(cfgpath, &err);
  SL_REQUIRE(cfg);
  dest = sl_asprintf("%s/run1", tmp);
  mkdir(dest, 0755);
  SL_CHECK(sl_config_templates_apply(cfg, dest, lookup, NULL, &err));
  p = sl_asprintf("%s/deck.in", dest);
  text = sl_read_file(p, 1000, &len);
  SL_CHECK_STR(text ? text : "(missing)", "a = 0.25\nid = s-1\n");
  free(text);
  free(p);
  p = sl_asprintf("%s/run.sh", dest);
  SL_CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0755);
  free(p);
  p = sl_asprintf("%s/sub/x", dest);
  text = sl_read_file(p, 1000, &len);
  SL_CHECK_STR(text ? text : "(missing)", "b=-3");
  SL_CHECK(stat(p, &st) == 0 && (st.st_mode & 0777) == 0600);
  free(text);
  free(p);
  sl_config_destroy(cfg);
  /* an unknown placeholder or a missing template is an error at load */
  p = sl_asprintf("%s/deck.in.tmpl", tmp);
  write_file(p, "a = {{a}}\nc = {{c}}\n", 0644);
  free(p);
  SL_CHECK(sl_config_load(cfgpath, &err) == NULL);
  SL_CHECKF(strstr(err.message, "field 'simulator.templates[0]':") &&
                strstr(err.message, "deck.in.tmpl:2:5: unknown placeholder '{{c}}'"),
            "%s", err.message);
  write_file(cfgpath, HEAD "simulator: {command: [sim], templates: [nothere]}\nbudget: {max_sims: 5}\n",
             0644);
  SL_CHECK(sl_config_load(cfgpath, &err) == NULL);
  SL_CHECKF(strstr(err.message, "field 'simulator.templates[0]': cannot read template") &&
                strstr(err.message, "nothere': No such file or directory"),
            "%s", err.message);
  p = sl_asprintf("rm -rf '%s'", tmp);
  SL_CHECK(system(p) == 0);
  free(p);
  free(dest);
  free(cfgpath);
}

SL_TEST_MAIN(SL_T(test_template_render), SL_T(test_template_numbers), SL_T(test_config_keys),
             SL_T(test_config_errors), SL_T(test_templates_apply))
