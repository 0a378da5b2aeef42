/* The end of `specline run`: the learner's last training on everything stored, and the
 * one-glance summary of the campaign read back from the store (run_summary.c). */
#ifndef SPECLINE_CLI_RUN_SUMMARY_H
#define SPECLINE_CLI_RUN_SUMMARY_H

#include <stdbool.h>
#include <stdio.h>

#include "specline/config.h"
#include "specline/error.h"

/* Trains the surrogate once more on every point stored (stopped runs' predicted tails
 * included, weighted; dataset.h) exactly as the learn worker does, and stores it as the
 * campaign's newest "surrogate" model; with experimental shots stored, its elevated model
 * too (kind "elevated", trainer.h). True with nothing done when fewer than two usable
 * points are stored; false with *err when loading, training or storing fails. */
bool sl_run_final_model(const sl_config_t *cfg, sl_error_t *err);

/* Prints the campaign's summary to out, read from the store: runs complete / stopped /
 * failed (audit re-runs counted apart), simulator steps used against the same runs run to
 * their end (the saving), the stops audited and how many were false (the audit re-run
 * checked against the prediction the stop relied on, policy.h's sl_audit_check), and the
 * newest surrogate's validation NRMSE and +-2 sigma coverage (and the elevated model's
 * shot NRMSE before and after, when there is one). wall is the campaign's
 * duration in seconds. False with *err when the store cannot be read. */
bool sl_run_summary(const sl_config_t *cfg, double wall, FILE *out, sl_error_t *err);

#endif
